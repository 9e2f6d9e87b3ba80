-- Per-field hashes of the body last accepted by the server, so that a changed record can be
-- updated with a PATCH of only the fields that changed (the full body is not kept forever).
ALTER TABLE items ADD COLUMN field_hashes TEXT;
