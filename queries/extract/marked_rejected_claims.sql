-- Claims this run already rejected and marked in one claim_id range (connectorx; :run_id, :low and
-- :high rendered by claims_etl.db.sql.quote). Read only when a range is retried: validating them again
-- gives the rule ids its dead attempt wrote to the warehouse, for the run's rejections by rule.
SELECT e.*, false AS recovered
FROM staging.etl_claims AS e
JOIN staging.claims AS c ON c.claim_id = e.claim_id
WHERE c.run_id = :run_id
  AND c.status = 'rejected'
  AND c.claim_id BETWEEN :low AND :high
  AND e.claim_id BETWEEN :low AND :high
