-- Count this attempt at the range on its lease; returns the attempt number (1 the first time), and no
-- row when the run no longer holds the lease (another run took it over: engine/planning.claimed stops).
UPDATE staging.range_leases
SET attempts = attempts + 1
WHERE run_id = %(run_id)s
  AND low = %(low)s
RETURNING attempts
