-- One reprice at a time (session-level, released when the session ends, even by a crash).
SELECT pg_try_advisory_lock(hashtext('claims_etl.reprice'))
