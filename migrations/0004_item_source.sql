-- Which source each record came from (an input file, a source program, Singer on stdin, or
-- the sourceKey the record carries), so that --prune only considers its own source's signals.
ALTER TABLE items ADD COLUMN source TEXT;
CREATE INDEX items_source ON items (source, status);
