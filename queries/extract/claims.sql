-- Claims leased by this run in one claim_id range (connectorx; :run_id, :low and :high rendered by
-- claims_etl.db.sql.quote). The bounds are repeated on the claims side: PostgreSQL carries equalities,
-- not ranges, across a join, and without them every range's read scanned the whole claims table,
-- all processed history included.
SELECT c.*, l.recovered, array_to_string(l.taken_from, ' ') AS taken_from
FROM staging.etl_claims AS c
JOIN staging.claim_leases AS l ON l.claim_id = c.claim_id
WHERE l.run_id = :run_id
  AND l.claim_id BETWEEN :low AND :high
  AND c.claim_id BETWEEN :low AND :high
