-- Dry run (read-only: no lease): the next page of the pending claims a run would take over with a
-- dead run's range lease (leases/lease_dead.sql), and their lines, in one statement, in the row shape
-- of extract/pending.sql (stages/extract.split_rows): pending, in [:low, :high], of :batch_id when not
-- NULL (the lease's batch), in claim_id order after :after (NULL: from the first), at most :page of
-- them. Rendered by claims_etl.db.sql.quote.
WITH chosen AS (
    SELECT p.claim_id
    FROM staging.claims AS p
    WHERE p.status = 'pending'
      AND p.claim_id BETWEEN :low::bigint AND :high::bigint
      AND (:after::bigint IS NULL OR p.claim_id > :after::bigint)
      AND (:batch_id::text IS NULL OR p.batch_id = :batch_id::text)
    ORDER BY p.claim_id
    LIMIT :page
)
SELECT r.*
FROM staging.etl_rows AS r
JOIN chosen USING (claim_id)
