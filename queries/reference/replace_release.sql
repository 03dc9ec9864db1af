-- Loading a release again replaces it atomically: its old rows go in the same transaction that
-- copies the new ones in (reference/store.load_release).
DELETE FROM staging.rvu WHERE release = %(release)s;
DELETE FROM staging.gpci WHERE release = %(release)s;
DELETE FROM staging.reference_releases WHERE release = %(release)s
