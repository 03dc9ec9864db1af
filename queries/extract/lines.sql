-- Service lines of the claims leased by this run in one claim_id range (connectorx; :run_id, :low
-- and :high rendered by claims_etl.db.sql.quote). The bounds are repeated on the lines side, as in
-- extract/claims.sql, so the read is a range of claim_lines' primary key, not a scan of the table.
SELECT cl.*
FROM staging.etl_claim_lines AS cl
JOIN staging.claim_leases AS l ON l.claim_id = cl.claim_id
WHERE l.run_id = :run_id
  AND l.claim_id BETWEEN :low AND :high
  AND cl.claim_id BETWEEN :low AND :high
