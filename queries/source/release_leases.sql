-- Release the leases of claims quarantined before their range was loaded (unreadable in the source,
-- stages/extract.quarantine_unreadable), in the transaction that marks them: as many as there are
-- claims, or another run took some over.
DELETE FROM staging.claim_leases
WHERE run_id = %(run_id)s
  AND claim_id = ANY(%(quarantined_ids)s::bigint[])
  AND claim_id BETWEEN %(low)s AND %(high)s
