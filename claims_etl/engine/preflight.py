"""A run's check before it leases anything, also made by `claims-etl run --dry-run`: pending claims no
loaded fee schedule release can price. psycopg only: it runs in a start-up thread while the run's main
thread imports Polars and Arrow (engine/start_up.py), and must not wait for them."""

from __future__ import annotations

import logging
from typing import Any

import psycopg

from claims_etl.db import sql
from claims_etl.errors import ConfigurationError
from claims_etl.settings import Settings

log = logging.getLogger(__name__)


def unpriceable_years(connection: psycopg.Connection[Any], settings: Settings) -> dict[int, int]:
    """Pending claims (of `settings.batch_id`) with a line that no loaded release prices, counted by
    service year: a missing fee schedule is a configuration error, not the claims' (docs/spec.md §7)."""
    rows = connection.execute(sql.load("source/unpriceable_years"), {"batch_id": settings.batch_id}).fetchall()
    connection.commit()
    return {int(year): int(claims) for year, claims in rows}


def preflight(source: psycopg.Connection[Any], settings: Settings) -> dict[int, int]:
    """Before leasing: pending claims no loaded release can price stop the run (exit 2), or with
    `skip_unpriceable` stay pending (one warning). Either way none is leased or rejected."""
    unpriceable = unpriceable_years(source, settings)
    if not unpriceable:
        return {}
    years = ", ".join(f"{year} ({claims:,} claims)" for year, claims in unpriceable.items())
    if not settings.skip_unpriceable:
        raise ConfigurationError(
            f"no fee schedule release in force for pending claims' service dates in {years}: "
            "load it (claims-etl reference load) or run with --skip-unpriceable; nothing leased"
        )
    log.warning("leaving claims pending, no fee schedule release in force: %s", years)
    return unpriceable
