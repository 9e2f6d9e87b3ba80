-- The holder's process start time (clock ticks since boot, /proc/PID/stat field 22), so a
-- pid reused by another process after the holder died is not taken for the holder.
ALTER TABLE lease ADD COLUMN started INTEGER;
