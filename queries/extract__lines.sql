-- Service lines of the claims leased by this run in one claim_id range (connectorx; :run_id, :low
-- and :high rendered by claims_etl.sql.quote).
SELECT cl.*
FROM staging.etl_claim_lines AS cl
JOIN staging.claim_leases AS l ON l.claim_id = cl.claim_id
WHERE l.run_id = :run_id
  AND l.claim_id BETWEEN :low AND :high
