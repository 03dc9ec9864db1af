-- The claim ids of one warehouse table (claims-etl reconcile, read by arrow-odbc); {table} is
-- priced_claims or rejected_claims, qualified for the target.
SELECT claim_id
FROM {table}
