-- A range done: every claim it read is marked, so its interval is free for the next run (claims
-- committed inside it after its read are still pending and leased then). One row, or the run lost the
-- lease (engine/leases.release fails the run).
DELETE FROM staging.range_leases
WHERE run_id = %(run_id)s
  AND low = %(low)s
