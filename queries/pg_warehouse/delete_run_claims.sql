-- Repair on a PostgreSQL warehouse reached by psycopg (db/pg_target.PgTarget.delete_claims): what
-- warehouse/delete_run_claims.sql deletes, for every (claim, run) pair of the chunk in one statement
-- instead of one per pair. Only the rows of the runs the leases were taken from.
-- Parameters by position: the claim ids (a bigint array) and the run ids (a text array), paired by index.
DELETE FROM {table} AS t
USING unnest(?::bigint[], ?::text[]) AS r (claim_id, run_id)
WHERE t.claim_id = r.claim_id
  AND t.run_id = r.run_id
