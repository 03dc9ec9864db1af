-- The claim_id bounds of processed claims with a line in a release's window (`reprice` plans its
-- chunks over them).
SELECT min(c.claim_id), max(c.claim_id), count(*)
FROM staging.claims AS c
WHERE c.status = 'processed'
  AND EXISTS (
      SELECT 1 FROM staging.claim_lines AS l
      WHERE l.claim_id = c.claim_id AND l.service_date >= %(valid_from)s AND l.service_date < %(valid_until)s
  )
