-- Fence a run whose leases this run took over (ops/run_records.fence), committed before this run
-- writes anything: its chunks' check (warehouse/run_fence_chunk.sql) then finds it failed and none of
-- them commits. Waits for a chunk of it that already passed its check to commit.
-- Parameters by position: finished_at, run_id.
UPDATE {etl_runs}
SET finished_at = ?, status = 'failed'
WHERE run_id = ?
  AND status = 'running'
