-- Which run leases an interval overlapping [low, high] now, if any: asked when this run's range_start
-- finds no lease of its own for a range (engine/planning.claimed). Another run's: this run lost it;
-- none: an earlier attempt of this run finished the range and released it.
SELECT run_id
FROM staging.range_leases
WHERE low <= %(high)s
  AND high >= %(low)s
