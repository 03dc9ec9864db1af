-- A run stopped in order (SIGINT, SIGTERM: claims_etl/engine/stopping.py) frees its leases at once:
-- every chunk it wrote is committed and marked, so the claims still pending in them are new work for
-- the next run, leased by it as any pending claim (and counted against its limit). A range this run
-- took over from a dead run keeps its lease: its claims may still have the dead run's rows in the
-- warehouse, which only a recovery deletes (the next run takes it over, this run's lock being gone).
DELETE FROM staging.range_leases
WHERE run_id = %(run_id)s
  AND NOT recovered
