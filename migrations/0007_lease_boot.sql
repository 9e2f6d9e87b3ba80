-- The holder's kernel boot id (/proc/sys/kernel/random/boot_id): two containers on one machine
-- share it whatever their hostnames, and there the lock beside the ledger is the whole answer,
-- so a killed holder's row is taken over at once rather than after its heartbeat expires.
ALTER TABLE lease ADD COLUMN boot TEXT;
