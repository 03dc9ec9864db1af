-- Repair: the rows a dead run committed for claims this chunk loads again, deleted in the chunk's
-- own transaction before its inserts (stages/write.write_tables). One claim_id per parameter set.
DELETE FROM {table} WHERE claim_id = ?
