"""A run's check before it leases anything, also made by `claims-etl run --dry-run`: pending claims no
loaded fee schedule release can price."""

from __future__ import annotations

import logging
from typing import Any

import psycopg

from claims_etl.errors import ConfigurationError
from claims_etl.settings import Settings
from claims_etl.stages.extract import unpriceable_years

log = logging.getLogger(__name__)


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
