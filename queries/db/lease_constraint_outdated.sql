-- One row when the lease table lacks its disjointness constraint, or has the old int8range one
-- (db/lease_constraint.sql says why numrange): db init then (re)builds it.
SELECT 1
WHERE NOT EXISTS (
    SELECT 1
    FROM pg_constraint
    WHERE conname = 'range_leases_disjoint'
      AND conrelid = 'staging.range_leases'::regclass
      AND pg_get_constraintdef(oid) LIKE '%numrange%'
)
