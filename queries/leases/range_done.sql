-- Claims of a range that an earlier attempt of this run already marked, by status: a retried range
-- reports them with its own, so the run's counts stay whole.
SELECT count(*) FILTER (WHERE status = 'processed') AS priced,
       count(*) FILTER (WHERE status = 'rejected') AS rejected,
       count(*) FILTER (WHERE status = 'quarantined') AS quarantined
FROM staging.claims
WHERE claim_id BETWEEN %(low)s AND %(high)s
  AND run_id = %(run_id)s
