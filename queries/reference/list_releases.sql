-- `claims-etl reference list`: every release, its files and row counts, newest year first.
SELECT r.release, r.year, r.effective_from, r.rvu_file, r.rvu_sha256, r.qp_source, r.gpci_file,
       r.gpci_sha256, r.work_gpci, r.loaded_at,
       (SELECT count(*) FROM staging.rvu AS v WHERE v.release = r.release) AS rvu_rows,
       (SELECT count(*) FROM staging.gpci AS g WHERE g.release = r.release) AS gpci_rows,
       (SELECT count(*) FROM staging.qp_npis AS q WHERE q.year = r.year) AS qp_npis
FROM staging.reference_releases AS r
ORDER BY r.year DESC, r.effective_from DESC
