-- Pending claims for exploration (read-only: no lease) and their lines, in one statement. :batch_id (NULL
-- for all) and :limit (NULL for no limit) are rendered by claims_etl.db.sql.quote; `chosen` picks the
-- claims once for both kinds of row.
-- The row shape: staging.etl_rows (queries/db/create_staging.sql).
WITH chosen AS (
    SELECT c.claim_id
    FROM staging.claims AS c
    WHERE c.status = 'pending'
      AND (:batch_id::text IS NULL OR c.batch_id = :batch_id::text)
    ORDER BY c.claim_id
    LIMIT :limit
)
SELECT r.*
FROM staging.etl_rows AS r
JOIN chosen USING (claim_id)
