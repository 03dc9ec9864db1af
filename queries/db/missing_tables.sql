-- Which of the tables `claims-etl db init` creates (the tables parameter, read from db/create_staging.sql) this
-- database lacks: a run checks before its stages, so a database not set up is one line telling the
-- operator to run `claims-etl db init`, not a failure deep in a stage.
SELECT name
FROM unnest(%(tables)s::text[]) AS name
WHERE to_regclass(name) IS NULL
ORDER BY name
