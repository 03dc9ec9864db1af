"""The analysts' notebook (notebooks/explore.ipynb) as committed: without outputs, using only the public API;
it is run end to end against a database in tests/integration/api/test_notebook_run.py."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat

import claims_etl as ce

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "explore.ipynb"
# Imports the notebook may make from the package: the public API, plus the two setup helpers it seeds with.
ALLOWED_IMPORTS = {"claims_etl", "claims_etl.db.source.init_source", "claims_etl.synthetic.seed"}


def test_committed_notebook_has_no_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert notebook.metadata.kernelspec.name == "python3"


def test_notebook_uses_only_the_public_api() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    source = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    tree = ast.parse(re.sub(r"^%.*$", "", source, flags=re.MULTILINE))  # drop IPython magics
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names if alias.name.startswith("claims_etl")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("claims_etl"):
            imported |= {f"{node.module}.{alias.name}" for alias in node.names}
    assert imported == ALLOWED_IMPORTS
    used = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute) and ast.unparse(node.value) == "ce"}
    assert used <= set(ce.__all__)
    assert {"read_pending", "load_reference", "validate", "price", "rejections_by_rule", "allowed_vs_charge"} <= used
