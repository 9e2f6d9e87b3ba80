-- When a row was adopted from the server's copy (verify --repair, a rebuilt ledger) rather than
-- written from an input record; its payload_hash is 'adopted' until a push matches a record.
ALTER TABLE items ADD COLUMN adopted_at TEXT;
