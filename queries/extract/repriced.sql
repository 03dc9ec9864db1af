-- Processed claims with a line in a release's window (`reprice`): :valid_from <= service_date <
-- :valid_until, in claim_id range [:low, :high], and every line of theirs, in one statement. Values
-- rendered by claims_etl.db.sql.quote. The rows are staging.etl_rows' (claim rows and line rows, split by
-- stages/extract.split_rows); stages/extract.repriced flags the claims recovered (their warehouse rows
-- are replaced).
-- One SELECT around the view: connectorx partitions only a single SELECT statement.
SELECT *
FROM (
    SELECT r.*
    FROM staging.etl_rows AS r
    WHERE r.claim_id BETWEEN :low AND :high
      AND r.claim_id IN (
          SELECT c.claim_id
          FROM staging.claims AS c
          WHERE c.status = 'processed'
            AND c.claim_id BETWEEN :low AND :high
            AND EXISTS (
                SELECT 1 FROM staging.claim_lines AS l
                WHERE l.claim_id = c.claim_id AND l.service_date >= :valid_from AND l.service_date < :valid_until
            )
      )
) AS claim_rows
