-- Lines of the pending claims chosen like extract/pending_claims.sql (same :batch_id and :limit).
WITH chosen AS (
    SELECT c.claim_id
    FROM staging.claims AS c
    WHERE c.status = 'pending'
      AND (:batch_id::text IS NULL OR c.batch_id = :batch_id::text)
    ORDER BY c.claim_id
    LIMIT :limit
)
SELECT cl.*
FROM staging.etl_claim_lines AS cl
JOIN chosen USING (claim_id)
