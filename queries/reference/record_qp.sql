-- A QP list's row, with a new version for the reference cache.
INSERT INTO staging.qp_lists (year, file, sha256, npis, version)
VALUES (%(year)s, %(file)s, %(sha256)s, %(npis)s, gen_random_uuid())
