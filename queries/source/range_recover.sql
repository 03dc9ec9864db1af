-- A range attempted before in this run: its claims still leased may be in the warehouse already
-- (committed, not yet marked), so the load deletes them there before inserting them again.
UPDATE staging.claim_leases
SET recovered = true
WHERE run_id = %(run_id)s
  AND claim_id BETWEEN %(low)s AND %(high)s
  AND NOT recovered
