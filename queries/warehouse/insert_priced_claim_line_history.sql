-- A repriced claim's previous lines, kept with the run that replaced them (`reprice`). Parameters bind
-- by position: the column order of stages/load.HISTORY_SCHEMA (a unit test checks they agree).
INSERT INTO {priced_claim_line_history} (
  claim_id, line_number, procedure_code, modifier_1, units, charge, facility, fee_schedule_amount,
  adjustment_factor, allowed_amount, pricing_note, run_id, rvu_release, cf_kind, replaced_by_run, replaced_at
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
