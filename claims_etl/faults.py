"""Fault points: named places of a run (`after_lease`, `after_commit:3`, ...) where a crash test kills
or pauses the process. The run's entry resolves its hooks once and passes them down to the ranges,
chunks, writer processes and Dask workers (so they pickle); in production they are `no_faults`, and
only the development entry (`python -m claims_etl.dev.faulty`, claims_etl/dev/fault_hooks.py) or a
test installs real ones. The points themselves are listed in claims_etl/dev/fault_hooks.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from claims_etl.settings import Settings

log = logging.getLogger(__name__)


class Faults(Protocol):
    def __call__(self, point: str, chunk: int | None = None) -> None:
        """Kill or pause the process here if the hooks name this point (chunk k: the run's k-th)."""
        ...

    def in_writer(self, run_pid: int) -> Faults:
        """The hooks of a writer process of the run `run_pid`: a kill there kills the run too, as a
        power cut would."""
        ...


@dataclass(frozen=True)
class NoFaults:
    """Every point a no-op: the production hooks."""

    def __call__(self, point: str, chunk: int | None = None) -> None:
        return None

    def in_writer(self, run_pid: int) -> Faults:
        return self


no_faults: Faults = NoFaults()
# Set by the development entry alone (claims_etl/dev/faulty.py): what builds a run's hooks from its settings.
_installed: Callable[[Settings], Faults] | None = None


def install(hooks: Callable[[Settings], Faults]) -> None:
    """Make the runs and reprices this process starts without hooks of their own use `hooks(settings)`."""
    global _installed  # noqa: PLW0603  (one per process: the entry point's choice)
    _installed = hooks


def for_entry(settings: Settings) -> Faults:
    """The hooks of a run or reprice not given any: those installed by the development entry, else
    none. Fault settings without it fire nothing: one warning says so (their values are not logged)."""
    if _installed is not None:
        return _installed(settings)
    if settings.fault is not None:
        log.warning("fault settings (CLAIMS_ETL_FAULT...) are ignored outside the development entry point")
    return no_faults
