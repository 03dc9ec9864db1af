-- Seeded claims continue after the largest existing claim_id (docs/spec.md §6, `seed`). In numeric: the
-- largest may be 2^63 - 1, whose successor no bigint holds (dev/seed.py refuses then).
SELECT coalesce(max(claim_id)::numeric, 0) + 1 FROM staging.claims
