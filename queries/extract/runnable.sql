-- Dry run (read-only: no lease): the next page of the pending claims a run would lease now, and their
-- lines, in one statement, in the row shape of extract/pending.sql (stages/extract.split_rows). Chosen as
-- leases/lease_pending.sql chooses them: pending, of :batch_id when not NULL, inside no run's leased
-- interval, and with :skip_unpriceable = 1 none with a line in staging.etl_unpriceable_lines;
-- in claim_id order after :after (NULL: from the first), at most :page of them. Rendered by
-- claims_etl.db.sql.quote.
WITH chosen AS (
    SELECT p.claim_id
    FROM staging.claims AS p
    WHERE p.status = 'pending'
      AND (:after::bigint IS NULL OR p.claim_id > :after::bigint)
      AND (:batch_id::text IS NULL OR p.batch_id = :batch_id::text)
      AND NOT EXISTS (SELECT 1 FROM staging.range_leases AS l WHERE p.claim_id BETWEEN l.low AND l.high)
      AND (:skip_unpriceable = 0
           OR NOT EXISTS (SELECT 1 FROM staging.etl_unpriceable_lines AS u WHERE u.claim_id = p.claim_id))
    ORDER BY p.claim_id
    LIMIT :page
)
SELECT r.*
FROM staging.etl_rows AS r
JOIN chosen USING (claim_id)
