-- Pending claims for exploration (read-only: no lease). :batch_id (NULL for all) and :limit (NULL for
-- no limit) are rendered by claims_etl.db.sql.quote.
SELECT c.*, false AS recovered
FROM staging.etl_claims AS c
WHERE c.status = 'pending'
  AND (:batch_id::text IS NULL OR c.batch_id = :batch_id::text)
ORDER BY c.claim_id
LIMIT :limit
