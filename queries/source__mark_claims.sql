-- Flip the status of claims whose warehouse rows are committed, and release their leases, in one
-- transaction. Only claims this run still holds are touched.
WITH finished AS (
    SELECT unnest(%(claim_ids)s::bigint[]) AS claim_id, unnest(%(statuses)s::text[]) AS status
), marked AS (
    UPDATE staging.claims AS c
    SET status = f.status, run_id = %(run_id)s, processed_at = %(processed_at)s
    FROM finished AS f
    JOIN staging.claim_leases AS l ON l.claim_id = f.claim_id AND l.run_id = %(run_id)s
    WHERE c.claim_id = f.claim_id
    RETURNING c.claim_id
)
DELETE FROM staging.claim_leases AS l
USING marked
WHERE l.claim_id = marked.claim_id
