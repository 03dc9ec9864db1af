-- A chunk's accepted claims. Parameters bind by position: the column order of
-- stages/load.LOAD_SCHEMAS["priced_claims"] (a unit test checks they agree).
INSERT INTO {priced_claims} (
  claim_id, batch_id, run_id, billing_npi, mac, locality, place_of_service, line_count,
  total_charge, total_allowed, priced_at
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
