-- Claims this run already rejected and marked in one claim_id range, and their lines, in one statement
-- (connectorx; :run_id, :low and :high rendered by claims_etl.db.sql.quote). Read only when a range is
-- retried: validating them again gives the rule ids its dead attempt wrote to the warehouse, for the
-- run's rejections by rule. The rows are staging.etl_rows' (claim rows and line rows, split by
-- stages/extract.split_rows).
-- One SELECT around the view: connectorx partitions only a single SELECT statement.
SELECT *
FROM (
    SELECT r.*
    FROM staging.claims AS c
    JOIN staging.etl_rows AS r ON r.claim_id = c.claim_id
    WHERE c.run_id = :run_id
      AND c.status = 'rejected'
      AND c.claim_id BETWEEN :low AND :high
      AND r.claim_id BETWEEN :low AND :high
) AS claim_rows
