-- Loading a fee schedule year replaces it atomically (docs/spec.md §3): its old rows go in the same
-- transaction that copies the new ones in (reference/store.load_year).
DELETE FROM staging.rvu WHERE year = %(year)s;
DELETE FROM staging.gpci WHERE year = %(year)s
