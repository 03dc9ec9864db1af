-- Flip the status of one chunk's claims (this run's leases in [low, high]) once their warehouse rows
-- are committed, and release those leases, in one transaction. Only rejected ids travel: every other
-- leased claim in the range was priced.
WITH marked AS (
    UPDATE staging.claims AS c
    SET status = CASE WHEN r.claim_id IS NULL THEN 'processed' ELSE 'rejected' END,
        run_id = %(run_id)s,
        processed_at = %(processed_at)s
    FROM staging.claim_leases AS l
    LEFT JOIN unnest(%(rejected_ids)s::bigint[]) AS r (claim_id) ON r.claim_id = l.claim_id
    WHERE l.run_id = %(run_id)s
      AND l.claim_id BETWEEN %(low)s AND %(high)s
      AND c.claim_id = l.claim_id
    RETURNING c.claim_id
)
DELETE FROM staging.claim_leases AS l
USING marked
WHERE l.claim_id = marked.claim_id
