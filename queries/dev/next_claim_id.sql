-- Seeded claims continue after the largest existing claim_id (docs/spec.md §6, `seed`).
SELECT coalesce(max(claim_id), 0) + 1 FROM staging.claims
