-- The run still holds the range lease around [low, high]: one row, or another run took it over (this
-- run looked dead), asked by engine/leases.check. First in every marking transaction (engine/marking:
-- mark_chunk, quarantine_unreadable): FOR SHARE makes a takeover (leases/lease_recover.sql updates the
-- row) wait for this transaction's commit, and a takeover committed first leaves this with no row, so the
-- marking rolls back. Never both.
SELECT 1
FROM staging.range_leases
WHERE run_id = %(run_id)s
  AND low <= %(low)s
  AND high >= %(high)s
FOR SHARE
