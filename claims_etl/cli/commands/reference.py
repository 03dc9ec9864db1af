"""`claims-etl reference load | load-qp | list`: CMS fee schedule releases in the reference tables."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import click
import typer

from claims_etl.cli import invocation
from claims_etl.cli import options as opt
from claims_etl.cli.help import HelpCommand, HelpGroup
from claims_etl.errors import ConfigurationError

if TYPE_CHECKING:
    from decimal import Decimal

    from claims_etl.reference import store

app = typer.Typer(help="CMS fee schedule reference data.", no_args_is_help=True, cls=HelpGroup)


# `reference load`'s two options with the longest declarations.
GpciFile = Annotated[
    Path | None,
    typer.Option(
        metavar="FILE",
        help="CMS GPCI CSV [default: the zip's, else the release before's]; alone (no --rvu/--rvu-zip, with "
        "--release and --effective): a GPCI-only release, RVUs from the release before",
    ),
]
WorkGpci = Annotated[
    str | None,
    typer.Option(
        click_type=click.Choice(["floor", "no-floor"]),
        help="the GPCI file's work GPCI where it has two: with or without the 1.0 floor (2026)",
        show_default=False,
    ),
]


@app.command("load", cls=HelpCommand)
def load(
    year: Annotated[int, typer.Option(min=1992, max=2100, metavar="YYYY", help="service year the release prices")],
    rvu: Annotated[Path | None, typer.Option(metavar="FILE", help="CMS PPRRVU CSV (non-QP)")] = None,
    rvu_zip: Annotated[
        Path | None, typer.Option(metavar="ZIP", help="CMS RVU zip (e.g. RVU26B.zip): its PPRRVU and GPCI CSVs")
    ] = None,
    choose: Annotated[
        str | None, typer.Option(metavar="MEMBER", help="the non-QP PPRRVU member of a zip holding several")
    ] = None,
    gpci: GpciFile = None,
    work_gpci: WorkGpci = None,
    release: Annotated[
        str | None,
        typer.Option(metavar="LABEL", help="release label, e.g. 2026B [default: from the file's banner or name]"),
    ] = None,
    effective: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"], metavar="DATE", help="in force from [default: the release's quarter, from the file]"
        ),
    ] = None,
    qp_cf: Annotated[
        str | None, typer.Option(metavar="NUMBER", help="QP conversion factor [default: the zip's QP PPRRVU file]")
    ] = None,
    source_url: opt.SourceUrl = None,
) -> None:
    """Load a CMS fee schedule release (replaces that release atomically; refused whole if any file is bad)."""
    import tempfile  # cold start (claims_etl/cli/invocation.py)

    from claims_etl.reference import store

    settings = invocation.settings(source_url=source_url)
    with (
        invocation.one_line_errors(*invocation.secrets(settings)),
        tempfile.TemporaryDirectory(prefix="claims-etl-rvu-") as unpacked,
    ):
        loaded = store.load_release(
            settings,
            _release_files(rvu, rvu_zip, choose, gpci, Path(unpacked)),
            year=year,
            release=release,
            effective=effective.date() if effective else None,
            qp_cf=_decimal("--qp-cf", qp_cf),
            work_gpci="floor" if work_gpci == "floor" else "no-floor" if work_gpci else None,
        )
    _print_loaded(loaded, release_given=release is not None, effective_given=effective is not None)


def _print_loaded(loaded: store.LoadedRelease, *, release_given: bool, effective_given: bool) -> None:
    """What was loaded, and which of the release label and date were inferred from the files."""
    if loaded.inferred is not None:
        named = [] if release_given else [f"release {loaded.release}"]
        named += [] if effective_given else [f"in force from {loaded.effective_from}"]
        invocation.out().print(
            f"{', '.join(named)}: inferred from {loaded.inferred.source} (--release/--effective override)",
            highlight=False,
        )
    qp = f", QP conversion factor {loaded.qp_conv_factor}" if loaded.qp_conv_factor is not None else ""
    work = f", work GPCI {loaded.work_gpci}" if loaded.work_gpci else ""
    invocation.out().print(
        f"loaded release {loaded.release} ({loaded.year}, in force from {loaded.effective_from}): "
        f"{loaded.rvu_rows} RVU rows ({loaded.rvu_from}), {loaded.gpci_rows} GPCI rows ({loaded.gpci_from}{work}){qp}"
    )


def _release_files(
    rvu: Path | None, rvu_zip: Path | None, choose: str | None, gpci: Path | None, unpacked: Path
) -> store.ReleaseFiles:
    """The release's files from `--rvu` or `--rvu-zip` (at most one), `--gpci` winning over the zip's;
    `--gpci` alone is a GPCI-only release."""
    from claims_etl.reference import cms_zip, store  # cold start (claims_etl/cli/invocation.py)

    if rvu is not None and rvu_zip is not None:
        raise ConfigurationError("give the PPRRVU file as one of --rvu FILE or --rvu-zip ZIP, not both")
    if rvu_zip is not None:
        found = cms_zip.rvu_files_in_zip(rvu_zip, unpacked, choose)
        return store.ReleaseFiles(rvu=found.non_qp, qp_rvu=found.qp, gpci=gpci or found.gpci, zip_name=rvu_zip.name)
    if rvu is None and gpci is None:
        raise ConfigurationError(
            "give the PPRRVU file as --rvu FILE or --rvu-zip ZIP, or a GPCI-only release as --gpci FILE "
            "with --release and --effective"
        )
    return store.ReleaseFiles(rvu=rvu, gpci=gpci)


def _decimal(flag: str, text: str | None) -> Decimal | None:
    from decimal import Decimal, InvalidOperation  # cold start (claims_etl/cli/invocation.py)

    if text is None:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ConfigurationError(f"{flag} {text!r} is not a number") from None


@app.command("load-qp", cls=HelpCommand)
def load_qp(
    file: Annotated[Path, typer.Option(metavar="FILE", help="CSV with the header npi, one NPI a line")],
    year: Annotated[int, typer.Option(min=1992, max=2100, metavar="YYYY", help="service year the list applies to")],
    source_url: opt.SourceUrl = None,
) -> None:
    """Load the NPIs priced with the QP conversion factor for a year (replaces that year's list)."""
    from claims_etl.reference import store  # cold start (claims_etl/cli/invocation.py)

    settings = invocation.settings(source_url=source_url)
    with invocation.one_line_errors(*invocation.secrets(settings)):
        npis = store.load_qp_list(settings, file, year)
    invocation.out().print(f"loaded the {year} QP list: {npis} NPIs")


@app.command("list", cls=HelpCommand)
def list_releases(as_json: opt.Json = False, source_url: opt.SourceUrl = None) -> None:
    """The loaded releases: label, year, effective date, files and their sha256, row counts."""
    from claims_etl.cli import render  # cold start (claims_etl/cli/invocation.py)
    from claims_etl.reference import store

    settings = invocation.settings(source_url=source_url)
    with invocation.one_line_errors(*invocation.secrets(settings)):
        releases = store.list_releases(settings)
    if as_json:
        invocation.print_json(releases, default=str)
    else:
        invocation.out().print(render.releases(releases), highlight=False)
