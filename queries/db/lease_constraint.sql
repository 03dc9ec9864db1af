-- No two runs' intervals overlap, whatever the batches: the lease statement never makes them, and
-- should it ever, this fails the lease instead of sharing a claim (a GiST index on a few rows). A
-- numrange, not an int8range: int8range canonicalizes [low, high] to [low, high + 1), which overflows
-- when high is 2^63 - 1; numeric ranges are not canonicalized. Run by db init only where the
-- constraint is missing or still an int8range one: rebuilding it locks the lease table, which live
-- runs use.
ALTER TABLE staging.range_leases DROP CONSTRAINT IF EXISTS range_leases_disjoint;
ALTER TABLE staging.range_leases ADD CONSTRAINT range_leases_disjoint
    EXCLUDE USING gist (numrange(low, high, '[]') WITH &&);
