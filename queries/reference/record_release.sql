-- A release's row, with a new version for the reference cache.
INSERT INTO staging.reference_releases
    (release, year, effective_from, rvu_file, rvu_sha256, qp_source, gpci_file, gpci_sha256, work_gpci, version)
VALUES (%(release)s, %(year)s, %(effective_from)s, %(rvu_file)s, %(rvu_sha256)s, %(qp_source)s,
        %(gpci_file)s, %(gpci_sha256)s, %(work_gpci)s, gen_random_uuid())
