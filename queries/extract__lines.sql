-- Service lines of the claims leased by this run (connectorx; :run_id rendered by quote()).
SELECT cl.*
FROM staging.etl_claim_lines AS cl
JOIN staging.claim_leases AS l ON l.claim_id = cl.claim_id
WHERE l.run_id = :run_id
