"""Progress bars for `claims-etl run` (rich only: imported before the run's first statement, so kept
apart from `render`, whose tables import the stages; rich.progress itself only when bars are shown)."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID


class StageBars:
    """One progress bar per stage with counts and rates, on stderr while `claims-etl run` works."""

    def __init__(self, console: Console, *, enabled: bool) -> None:
        self.progress = _progress(console) if enabled else None
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> StageBars:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self.progress is not None:
            self.progress.stop()

    def update(self, stage: str, done: int, total: int) -> None:
        if self.progress is None:
            return
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(stage, total=max(total, 1), rate="")
        task = self.tasks[stage]
        elapsed = self.progress.tasks[task].elapsed or 0.0
        rate = f"{done / elapsed:>10,.0f}/s" if elapsed > 0 and done else ""
        self.progress.update(task, completed=done, total=max(total, 1), rate=rate)


def _progress(console: Console) -> Progress:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        TextColumn("{task.description:<9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
