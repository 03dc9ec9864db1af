-- Repair: the rows a dead run (or an earlier attempt of this run) committed for claims this chunk
-- loads again, deleted in the chunk's own transaction before its inserts (stages/write.write_tables).
-- Only that run's rows: a row of the same claim_id from another run (a claim reset to pending by hand,
-- a reused id) is never deleted; the insert then meets it and the claim is quarantined.
-- Parameters by position, one set per (claim, run the lease was taken from): claim_id, run_id.
DELETE FROM {table} WHERE claim_id = ? AND run_id = ?
