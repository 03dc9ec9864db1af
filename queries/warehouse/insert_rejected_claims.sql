-- A chunk's rejected claims. Parameters bind by position: the column order of
-- stages/load.LOAD_SCHEMAS["rejected_claims"] (a unit test checks they agree).
INSERT INTO {rejected_claims} (claim_id, batch_id, run_id, rule_ids, rejected_at) VALUES (?, ?, ?, ?, ?)
