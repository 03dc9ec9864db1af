-- Leasing is serialized across runs for the length of the lease transaction: the next run's lease
-- statement then sees this run's committed leases, so concurrent runs split the work instead of one
-- of them skipping every conflicting claim. (Cheaper than locking each claim row FOR UPDATE.)
SELECT pg_advisory_xact_lock(hashtextextended('claims_etl.lease', 0))
