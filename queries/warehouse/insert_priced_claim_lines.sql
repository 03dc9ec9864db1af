-- A chunk's priced lines. Parameters bind by position: the column order of
-- stages/load.LOAD_SCHEMAS["priced_claim_lines"] (a unit test checks they agree).
INSERT INTO {priced_claim_lines} (
  claim_id, line_number, procedure_code, modifier_1, units, charge, facility, fee_schedule_amount,
  adjustment_factor, allowed_amount, pricing_note, run_id, rvu_release, cf_kind
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
