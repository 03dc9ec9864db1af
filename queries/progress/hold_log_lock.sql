-- Held by the session that publishes a run's progress (ops/progress_log.ProgressLog) until the run's
-- last status is written: the run lock is released with the run's source session, before its final
-- status, so without this lock a reader would take a run that is finishing for one that was killed.
-- Its key is the run lock's key of the name `<run_id>:log`, so source/live_runs.sql asks about both.
-- A try-lock: a session of this run that is dying may hold it for a moment; it never blocks a run.
SELECT pg_try_advisory_lock(hashtextextended(%(run_id)s || ':log', 0))
