-- The claims in the warehouse in claim_id range [low, high], with the run that wrote each: read only
-- after a chunk's insert failed, to find its claims already loaded by another run (stages/isolate.py).
-- Parameters by position: low, high, low, high.
SELECT claim_id, run_id FROM {priced_claims} WHERE claim_id BETWEEN ? AND ?
UNION ALL
SELECT claim_id, run_id FROM {rejected_claims} WHERE claim_id BETWEEN ? AND ?
