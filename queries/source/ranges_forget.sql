-- Forget the ranges of runs that hold no leases any more (finished, or taken over by this run).
DELETE FROM staging.run_ranges AS r
WHERE NOT EXISTS (SELECT 1 FROM staging.claim_leases AS l WHERE l.run_id = r.run_id)
