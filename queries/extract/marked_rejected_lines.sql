-- Service lines of the claims extract/marked_rejected_claims.sql reads (same :run_id, :low, :high).
SELECT cl.*
FROM staging.etl_claim_lines AS cl
JOIN staging.claims AS c ON c.claim_id = cl.claim_id
WHERE c.run_id = :run_id
  AND c.status = 'rejected'
  AND c.claim_id BETWEEN :low AND :high
  AND cl.claim_id BETWEEN :low AND :high
