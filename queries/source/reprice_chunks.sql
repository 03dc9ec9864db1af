-- `reprice` works the processed claims with a line in a release's window in chunks of at most
-- `claims_per_chunk` claims: each chunk's claim_id bounds and its number of such claims.
WITH candidates AS (
    SELECT c.claim_id, (row_number() OVER (ORDER BY c.claim_id) - 1) / %(claims_per_chunk)s AS chunk
    FROM staging.claims AS c
    WHERE c.status = 'processed'
      AND EXISTS (
          SELECT 1 FROM staging.claim_lines AS l
          WHERE l.claim_id = c.claim_id AND l.service_date >= %(valid_from)s AND l.service_date < %(valid_until)s
      )
)
SELECT min(claim_id) AS low, max(claim_id) AS high, count(*) AS claims
FROM candidates
GROUP BY chunk
ORDER BY chunk
