-- Lease pending claims to this run in one statement, serialized across runs by source/lease_lock.sql:
-- this statement's snapshot, taken after that lock, sees every lease committed before it, so NOT
-- EXISTS leaves runs disjoint. No ON CONFLICT: its speculative insertion adds a WAL record per row
-- (benchmarks/LOG.md); should a conflict ever happen anyway, the primary key
-- fails the lease and the run, and never shares a claim. LIMIT NULL means no limit. With
-- --skip-unpriceable, claims with a line no loaded release prices (source/unpriceable_years.sql) stay
-- pending; without it such a run stopped before this statement. A line dated outside 0001-9999 is
-- leased: rule V16 rejects it (source/unpriceable_years.sql).
INSERT INTO staging.claim_leases (claim_id, run_id)
SELECT c.claim_id, %(run_id)s
FROM staging.claims AS c
WHERE c.status = 'pending'
  AND (%(batch_id)s::text IS NULL OR c.batch_id = %(batch_id)s::text)
  AND NOT EXISTS (SELECT 1 FROM staging.claim_leases AS l WHERE l.claim_id = c.claim_id)
  AND (NOT %(skip_unpriceable)s::boolean OR NOT EXISTS (
      SELECT 1
      FROM staging.claim_lines AS cl
      WHERE cl.claim_id = c.claim_id
        AND cl.service_date BETWEEN DATE '0001-01-01' AND DATE '9999-12-31'
        AND NOT EXISTS (
            SELECT 1 FROM staging.reference_releases AS r
            WHERE r.year = extract(year FROM cl.service_date) AND r.effective_from <= cl.service_date)))
ORDER BY c.claim_id
LIMIT %(limit)s
