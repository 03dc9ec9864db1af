-- Count this attempt at the range; returns the attempt number (1 the first time).
INSERT INTO staging.run_ranges AS r (run_id, low, high)
VALUES (%(run_id)s, %(low)s, %(high)s)
ON CONFLICT (run_id, low) DO UPDATE SET attempts = r.attempts + 1
RETURNING attempts
