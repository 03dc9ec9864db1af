"""The house's shape as tests (docs/design.md, "The house"): the import contracts in pyproject.toml
(each layer imports only those below it, no import cycles, no production import of claims_etl.dev), no
module over 400 lines, and no block of code repeated across modules. Read from the source, no database."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

import claims_etl

ROOT = Path(claims_etl.__file__).parent.parent
PACKAGE = ROOT / "claims_etl"
MAX_LINES = 400
# Lines in a row that make a repeated block: shorter runs are idioms (a `with` and its call, a
# dataclass's fields), longer ones are code that should live in one place.
BLOCK = 6
# Parameter, field and argument lines (`run_date: date,`, `rules: RulesConfig | None = None`,
# `source=source,`): two functions with the same parameters, or two calls of one function with the
# same names, share a signature, not code.
DECLARATION = re.compile(r"^(\*,|\w+: [^=()]+(= [^()]*)?,?|\w+(=[\w.()]+)?,)$")


def test_the_import_contracts_hold() -> None:
    """pyproject.toml's [tool.importlinter] contracts, as `lint-imports` checks them (in a process of
    its own: it reconfigures logging, which would silence the package's loggers in later tests)."""
    linter = Path(sys.executable).parent / "lint-imports"
    checked = subprocess.run([linter, "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout[-4000:]


def test_every_package_folder_is_in_the_wheel() -> None:
    """pyproject's explicit package list names every folder with an __init__.py: a folder left out is
    missing from the wheel a Dask worker installs, though an editable install hides it."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {".".join(init.parent.relative_to(ROOT).parts) for init in PACKAGE.rglob("__init__.py")} | {
        "claims_etl.queries"
    }
    assert listed == folders


def test_no_module_is_over_400_lines() -> None:
    long = {
        path.relative_to(ROOT).as_posix(): lines
        for path in PACKAGE.rglob("*.py")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def _code_lines(path: Path) -> list[tuple[int, str]]:
    """The module's statements as (line number, text stripped), without blank lines, comments,
    imports, docstrings, decorators and declarations: what is left is what a repeated block would repeat."""
    kept, in_docstring = [], False
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        quotes = line.count('"""')
        if in_docstring or line.startswith('"""'):
            in_docstring = in_docstring != (quotes % 2 == 1)
            continue
        if not line or line.startswith(("#", "import ", "from ", "@")) or line in {")", "]", "}", "),", "],"}:
            continue
        if DECLARATION.match(line):
            continue
        kept.append((number, re.sub(r"\s+#.*$", "", line)))
    return kept


def repeated_blocks(paths: list[Path], root: Path) -> list[list[str]]:
    """Each run of BLOCK code lines found in more than one module, as the places it starts."""
    modules: dict[tuple[str, ...], set[str]] = defaultdict(set)
    where: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for path in sorted(paths):
        lines = _code_lines(path)
        name = path.relative_to(root).as_posix()
        for start in range(len(lines) - BLOCK + 1):
            block = tuple(text for _, text in lines[start : start + BLOCK])
            if name not in modules[block]:
                modules[block].add(name)
                where[block].append(f"{name}:{lines[start][0]}")
    return [places for block, places in where.items() if len(modules[block]) > 1]


def test_no_block_of_code_is_repeated_across_modules() -> None:
    assert repeated_blocks(list(PACKAGE.rglob("*.py")), ROOT) == []


def test_a_repeated_block_is_found_whatever_its_comments(tmp_path: Path) -> None:
    body = "\n".join(f"    total += step_{n}(total)  # step {n}" for n in range(BLOCK))
    (tmp_path / "a.py").write_text(f"def a(total):\n{body}\n    return total\n", encoding="utf-8")
    (tmp_path / "b.py").write_text(f"def b(total):\n    # the same steps\n{body}\n", encoding="utf-8")
    (tmp_path / "c.py").write_text("def c(run_date: date,\n" + "    x: int,\n" * BLOCK + "):\n", encoding="utf-8")
    (tmp_path / "d.py").write_text("def d(run_date: date,\n" + "    x: int,\n" * BLOCK + "):\n", encoding="utf-8")
    assert repeated_blocks(list(tmp_path.glob("*.py")), tmp_path) == [["a.py:2", "b.py:3"]]
