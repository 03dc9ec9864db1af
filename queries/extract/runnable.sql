-- Dry run (read-only: no lease): the next page of the pending claims a run would lease now, and their
-- lines, in one statement, in the row shape of extract/pending.sql (stages/extract.split_rows). Chosen as
-- source/lease_pending.sql chooses them: pending, of :batch_id when not NULL, leased to no run, and with
-- :skip_unpriceable = 1 only claims every line of which (dated inside 0001-9999) a loaded release prices;
-- in claim_id order after :after (NULL: from the first), at most :page of them. Rendered by
-- claims_etl.db.sql.quote.
WITH chosen AS (
    SELECT p.claim_id
    FROM staging.claims AS p
    WHERE p.status = 'pending'
      AND (:after::bigint IS NULL OR p.claim_id > :after::bigint)
      AND (:batch_id::text IS NULL OR p.batch_id = :batch_id::text)
      AND NOT EXISTS (SELECT 1 FROM staging.claim_leases AS l WHERE l.claim_id = p.claim_id)
      AND (:skip_unpriceable = 0 OR NOT EXISTS (
          SELECT 1
          FROM staging.claim_lines AS cl
          WHERE cl.claim_id = p.claim_id
            AND cl.service_date BETWEEN DATE '0001-01-01' AND DATE '9999-12-31'
            AND NOT EXISTS (
                SELECT 1 FROM staging.reference_releases AS r
                WHERE r.year = extract(year FROM cl.service_date) AND r.effective_from <= cl.service_date)))
    ORDER BY p.claim_id
    LIMIT :page
)
SELECT r.*
FROM staging.etl_rows AS r
JOIN chosen USING (claim_id)
