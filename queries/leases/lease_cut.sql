-- Where a dead run's range is cut so that the run takes only its first :take pending claims (of the
-- lease's batch) under its limit: the claim_id of the :take-th of them (engine/leases.take).
SELECT c.claim_id
FROM staging.claims AS c
WHERE c.claim_id BETWEEN %(low)s AND %(high)s
  AND c.status = 'pending'
  AND (%(batch_id)s::text IS NULL OR c.batch_id = %(batch_id)s::text)
ORDER BY c.claim_id
OFFSET %(take)s - 1
LIMIT 1
