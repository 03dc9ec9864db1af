-- Which of the given runs are alive: some session holds the run's lock (source/lock_run.sql takes it
-- shared, on the run's own session and on every session working one of its ranges). Read from
-- pg_locks, so asking takes no lock and never delays a run recovering the dead ones (which takes
-- their lock, leases/lease_recover.sql). An advisory lock on a bigint key shows as classid (high 32
-- bits), objid (low 32 bits) and objsubid 1.
SELECT r.run_id
FROM unnest(%(run_ids)s::text[]) AS r (run_id)
WHERE EXISTS (
    SELECT 1
    FROM pg_locks AS k
    WHERE k.locktype = 'advisory'
      AND k.granted
      AND k.objsubid = 1
      AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND k.classid = ((hashtextextended(r.run_id, 0) >> 32) & 4294967295)::oid
      AND k.objid = (hashtextextended(r.run_id, 0) & 4294967295)::oid
)
