-- The priced lines now in the warehouse for claim_id range [low, high] (`reprice` compares them with
-- the new prices). Parameters by position: low, high.
SELECT claim_id, line_number, procedure_code, modifier_1, units, charge, facility, fee_schedule_amount,
       adjustment_factor, allowed_amount, pricing_note, run_id, rvu_release, cf_kind
FROM {priced_claim_lines}
WHERE claim_id BETWEEN ? AND ?
