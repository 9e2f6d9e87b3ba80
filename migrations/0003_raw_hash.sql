-- A hash of the exact input line a record came from (JSONL), so that a re-run can recognise
-- an unchanged record by its bytes, without parsing it.
ALTER TABLE items ADD COLUMN raw_hash TEXT;
CREATE INDEX items_raw_hash ON items (raw_hash) WHERE raw_hash IS NOT NULL;
