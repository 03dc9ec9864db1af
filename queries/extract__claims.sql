-- Claims leased by this run (connectorx; :run_id rendered by claims_etl.sql.quote).
SELECT c.*, l.recovered
FROM staging.etl_claims AS c
JOIN staging.claim_leases AS l ON l.claim_id = c.claim_id
WHERE l.run_id = :run_id
