"""`make profile` (benchmarks/profile.py): samples are charged to the right stage, and the psutil CPU
account counts a real process's threads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks import profile

RUN = 'process 7:"python -m claims_etl run --json"'
MAIN = (
    "<module> (claims_etl/__main__.py:3);run (claims_etl/engine/run.py:70);work_locally (claims_etl/engine/local.py:40)"
)


def test_samples_go_to_the_innermost_stage_and_waits_to_waiting(tmp_path: Path) -> None:
    folded = tmp_path / "run.txt"
    folded.write_text(
        "\n".join(
            [
                f"{RUN};{MAIN};load_range (claims_etl/engine/range_work.py:120);"
                "write_tables (claims_etl/stages/write.py:50);"
                "Cursor.executemanycolumns (turbodbc/cursor.py:192) 30",
                f"{RUN};Thread.run (threading.py:982);prepare (claims_etl/engine/range_work.py:80);"
                "validate (claims_etl/stages/validate.py:90);LazyFrame.collect (polars/lazyframe/frame.py:2422) 12",
                f"{RUN};{MAIN};ChunkLoading._mark_oldest (claims_etl/engine/chunk_loading.py:60);"
                "Condition.wait (threading.py:327) 9",
                f"{RUN};_find_and_load (<frozen importlib._bootstrap>:1176);<module> (polars/__init__.py:1) 5",
                f"{RUN} 2",
            ]
        )
    )
    samples, hottest = profile.charge(folded)
    assert dict(samples) == {
        "load: warehouse insert": 30,
        "validate": 12,
        "waiting": 9,
        "imports": 5,
        "no Python frame": 2,
    }
    assert hottest["validate"] == {"LazyFrame.collect (polars/lazyframe/frame.py:2422)": 12}


def test_the_cpu_account_counts_a_busy_thread_of_a_real_process() -> None:
    burn = "import threading, time\nt = threading.Thread(target=lambda: sum(range(60_000_000)))\nt.start(); t.join()"
    child = subprocess.Popen([sys.executable, "-c", burn])
    account = profile.CpuAccount(child.pid)
    child.wait(timeout=60)
    totals = account.stop()
    assert totals["Python threads"] >= 0.2  # the summing thread's CPU, seen before it exited
    assert set(totals) <= {"Python threads", "Polars pool", "connectorx", *profile.SERVERS.values()}
