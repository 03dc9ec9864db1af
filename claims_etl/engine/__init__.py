"""Running a run: the wiring (`pipeline`), range planning and locks (`planning`), one range end to end
(`range_work`), chunk loading (`chunk_loading`), the local and Dask engines, the writers."""
