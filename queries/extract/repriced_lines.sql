-- Every line of the claims extract/repriced_claims.sql reads (same values).
SELECT cl.*
FROM staging.etl_claim_lines AS cl
WHERE cl.claim_id IN (
    SELECT c.claim_id
    FROM staging.claims AS c
    WHERE c.status = 'processed'
      AND c.claim_id BETWEEN :low AND :high
      AND EXISTS (
          SELECT 1 FROM staging.claim_lines AS l
          WHERE l.claim_id = c.claim_id AND l.service_date >= :valid_from AND l.service_date < :valid_until
      )
)
