"""Running a run: the wiring (`pipeline`), range leases and locks (`leases`), one range end to end
(`range_work`), chunk loading (`chunk_loading`), the local and Dask engines, the writers."""
