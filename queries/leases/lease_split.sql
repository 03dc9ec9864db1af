-- A dead run's range [low, high] cut at claim_id :cut (leases/lease_cut.sql): it keeps [low, cut],
-- which this run then takes over, and a new lease of the same dead run, batch, attempts, `recovered`
-- and `taken_from` holds (cut, high], recovered by a later run as the whole range would have been.
-- Shortened first: the two intervals never overlap, not even inside this transaction.
UPDATE staging.range_leases
SET high = %(cut)s
WHERE run_id = %(dead_run)s
  AND low = %(low)s;

INSERT INTO staging.range_leases (run_id, low, high, batch_id, claims, attempts, recovered, taken_from, leased_at)
SELECT l.run_id,
       %(cut)s + 1,
       %(high)s,
       l.batch_id,
       (SELECT count(*)
        FROM staging.claims AS c
        WHERE c.claim_id BETWEEN %(cut)s + 1 AND %(high)s
          AND c.status = 'pending'
          AND (l.batch_id IS NULL OR c.batch_id = l.batch_id)),
       l.attempts,
       l.recovered,
       l.taken_from,
       l.leased_at
FROM staging.range_leases AS l
WHERE l.run_id = %(dead_run)s
  AND l.low = %(low)s
