-- Lease pending claims to this run as claim_id intervals, in one statement (docs/design.md, Range
-- leases), serialized across runs by leases/lease_lock.sql: this statement's snapshot, taken after that
-- lock, sees every interval committed before it. The claims: pending, of :batch_id when not NULL, inside
-- no leased interval (whatever its batch), and with :skip_unpriceable none with a line no loaded
-- release prices (staging.etl_unpriceable_lines; without it such a run stopped before this statement);
-- the first :limit of them (NULL: no limit). They are cut in claim_id order into ranges, the first of
-- at most :first_range_claims claims and the others of at most :claims_per_range, and a range never
-- spans a leased interval: each interval's low starts a new `gap`, so every new interval lies between
-- existing ones. Returns the claims newly leased.
WITH candidates AS MATERIALIZED (
    SELECT c.claim_id
    FROM staging.claims AS c
    WHERE c.status = 'pending'
      AND (%(batch_id)s::text IS NULL OR c.batch_id = %(batch_id)s::text)
      AND NOT EXISTS (SELECT 1 FROM staging.range_leases AS l WHERE c.claim_id BETWEEN l.low AND l.high)
      AND (NOT %(skip_unpriceable)s::boolean
           OR NOT EXISTS (SELECT 1 FROM staging.etl_unpriceable_lines AS u WHERE u.claim_id = c.claim_id))
    ORDER BY c.claim_id
    LIMIT %(limit)s
), marks AS (
    SELECT claim_id AS at, true AS is_claim FROM candidates
    UNION ALL
    SELECT low, false FROM staging.range_leases
), numbered AS (
    SELECT at,
           is_claim,
           count(*) FILTER (WHERE NOT is_claim) OVER (ORDER BY at ROWS UNBOUNDED PRECEDING) AS gap,
           count(*) FILTER (WHERE is_claim) OVER (ORDER BY at ROWS UNBOUNDED PRECEDING) - 1 AS position
    FROM marks
), leased AS (
    INSERT INTO staging.range_leases (run_id, low, high, batch_id, claims)
    SELECT %(run_id)s, min(at), max(at), %(batch_id)s::text, count(*)
    FROM numbered
    WHERE is_claim
    GROUP BY gap,
             CASE WHEN position < %(first_range_claims)s THEN 0
                  ELSE 1 + (position - %(first_range_claims)s) / %(claims_per_range)s
             END
    RETURNING claims
)
SELECT coalesce(sum(claims), 0)::bigint FROM leased
