-- A range attempted before in this run: its claims still pending may be in the warehouse already
-- (committed, not yet marked) with this run's id, so the load deletes this run's rows of them (and
-- those of any run the lease was taken from) before inserting them again.
UPDATE staging.range_leases
SET recovered = true, taken_from = array_append(taken_from, %(run_id)s)
WHERE run_id = %(run_id)s
  AND low = %(low)s
  AND %(run_id)s <> ALL(coalesce(taken_from, '{}'))
