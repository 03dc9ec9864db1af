"""Running a run: the run itself (`run`), its results (`outcomes`), range leases and locks
(`leases`), validate then price (`transform`), one range end to end (`range_work`), chunk loading
(`chunk_loading`), the local and Dask engines, the writers."""
