-- A new version for a reloaded year, so no cache (in-process or Redis) serves the old frames.
INSERT INTO staging.reference_versions (year, version) VALUES (%(year)s, gen_random_uuid())
ON CONFLICT (year) DO UPDATE SET version = excluded.version, loaded_at = now()
