-- Repair on a PostgreSQL warehouse reached by psycopg (db/pg_target.PgTarget.delete_claims): what
-- warehouse/delete_claims.sql deletes (a reprice's recovered claims), all of them in one statement.
-- Parameters by position: the claim ids (a bigint array).
DELETE FROM {table} WHERE claim_id = ANY (?::bigint[])
