"""The one quoting helper for connectorx queries: values are literals, never SQL."""

from __future__ import annotations

from datetime import date

import pytest

from claims_etl.db import sql


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("x' OR '1'='1", "E'x'' OR ''1''=''1'"),
        ("a\\b", "E'a\\\\b'"),
        ("x\\' OR 1=1 --", "E'x\\\\'' OR 1=1 --'"),
        (None, "NULL"),
        (42, "42"),
        (date(2026, 2, 28), "DATE '2026-02-28'"),
    ],
)
def test_quote(value: sql.SqlValue, literal: str) -> None:
    assert sql.quote(value) == literal


def test_quote_refuses_nul_and_booleans() -> None:
    with pytest.raises(ValueError, match="NUL"):
        sql.quote("a\x00b")
    with pytest.raises(TypeError):
        sql.quote(True)  # type: ignore[arg-type]


def test_render_ignores_placeholders_in_comments() -> None:
    """A value with a newline must not escape a `--` comment that mentions its placeholder."""
    rendered = sql.render("extract/pending", batch_id="x\nDROP TABLE staging.claims --", limit=5)
    assert "DROP TABLE" not in rendered.replace("E'x\nDROP TABLE staging.claims --'", "")
    assert "--" not in rendered.replace("E'x\nDROP TABLE staging.claims --'", "")


def test_render_requires_every_placeholder() -> None:
    with pytest.raises(KeyError, match="limit"):
        sql.render("extract/pending", batch_id=None)
