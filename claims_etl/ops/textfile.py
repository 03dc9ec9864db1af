"""The Prometheus textfile a run leaves behind (`CLAIMS_ETL_METRICS_TEXTFILE`), for node_exporter's
textfile collector: the run's samples and the time of the last successful run."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from claims_etl.ops.metrics import LAST_SUCCESS, Sample, previous_value, write_textfile
from claims_etl.ops.progress_log import last_success
from claims_etl.settings import Settings

log = logging.getLogger(__name__)


class Finished(Protocol):
    """A run as the textfile reads it (engine/outcomes.RunResult)."""

    @property
    def status(self) -> str: ...

    def samples(self, *, succeeded: bool) -> list[Sample]: ...


@contextmanager
def metrics_textfile(settings: Settings, result: Finished) -> Iterator[None]:
    """After every run, also one that failed before it recorded anything: the Prometheus textfile
    (`CLAIMS_ETL_METRICS_TEXTFILE`), with the last success's time, this run's or, for a failed run, the
    newest of the run log's and the file's. A run that raised failed, even one whose stages all
    succeeded (its records could not be written). Best effort: a file not written is a warning."""
    succeeded = False
    try:
        yield
        succeeded = result.status == "succeeded"
    finally:
        path = settings.metrics_textfile
        if path:
            if succeeded:
                last: float | None = time.time()
            else:
                last = max(filter(None, (last_success(settings), previous_value(path, LAST_SUCCESS))), default=None)
            extra = [] if last is None else [Sample(LAST_SUCCESS, last)]
            try:
                write_textfile(path, [*result.samples(succeeded=succeeded), *extra])
            except OSError as error:
                log.warning("metrics textfile not written: %s", error.strerror or type(error).__name__)
