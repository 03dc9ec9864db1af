-- Processed claims with a line in a release's window (`reprice`): :valid_from <= service_date <
-- :valid_until, in claim_id range [:low, :high]. Values rendered by claims_etl.db.sql.quote.
SELECT c.*, true AS recovered
FROM staging.etl_claims AS c
WHERE c.status = 'processed'
  AND c.claim_id BETWEEN :low AND :high
  AND EXISTS (
      SELECT 1 FROM staging.claim_lines AS l
      WHERE l.claim_id = c.claim_id AND l.service_date >= :valid_from AND l.service_date < :valid_until
  )
