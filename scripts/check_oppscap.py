"""Check the engine's prices against CMS's own OPPSCAP file, by hand (no database).

    python scripts/check_oppscap.py --rvu PPRRVU2025_Oct.csv --gpci GPCI2025.csv \
        --oppscap OPPSCAP_Oct.csv --year 2025 [--work-gpci floor]

CMS's OPPSCAP file (in each RVU zip) holds, per code, modifier, carrier and locality, the facility and
non-facility payment amounts "after the application of the OPPS based payment caps": what Medicare
pays for one unit of a capped imaging service. This script reads the PPRRVU and GPCI files with the
engine's own reader, prices one single-unit line per OPPSCAP row and setting (POS 11 non-facility,
POS 22 facility) with `claims_etl.price`, and counts the lines whose allowed amount differs from CMS's
amount, listing the first few. Carrier-priced rows (PROCSTAT C) hold only the cap, not a payment, and
are left out. CMS's files are AMA-licensed content: keep them outside the repository.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from claims_etl import ReferenceFrames, price
from claims_etl.reference.cms import parse_gpci, parse_rvu
from claims_etl.schemas import CLAIMS, GPCI, LINES, RVU

_E4 = pl.Decimal(20, 4)
SETTINGS = {"non-facility": ("11", "NON-FACILTY PRICE"), "facility": ("22", "FACILITY PRICE")}  # CMS's spelling


def _e4(column: str) -> pl.Expr:
    """A decimal text cell as an integer x 10^4, exactly (no binary float)."""
    return (pl.col(column).cast(_E4) * 10_000).cast(pl.Int64).alias(f"{column}_e4")


def reference(rvu_path: Path, gpci_path: Path, year: int, work_gpci: str | None) -> ReferenceFrames:
    rvu = parse_rvu(rvu_path, year)
    numbers = ("work_rvu", "nonfac_pe_rvu", "facility_pe_rvu", "mp_rvu", "conv_factor")
    opps = ("opps_nonfac_pe_rvu", "opps_facility_pe_rvu", "opps_mp_rvu")
    rvu_frame = rvu.with_columns(
        *(_e4(column) for column in (*numbers, *opps)), pl.lit(year).alias("year"), pl.lit(f"{year}A").alias("release")
    )
    gpci = parse_gpci(gpci_path, year, work_gpci)  # type: ignore[arg-type]
    gpci_frame = gpci.with_columns(
        *(_e4(c) for c in ("pw_gpci", "pe_gpci", "mp_gpci")),
        pl.lit(year).alias("year"),
        pl.lit(f"{year}A").alias("release"),
    )
    return ReferenceFrames(rvu=_with_schema(rvu_frame, RVU), gpci=_with_schema(gpci_frame, GPCI))


def oppscap_rows(path: Path) -> pl.DataFrame:
    frame = pl.read_csv(path, infer_schema=False).filter(pl.col("HCPCS").is_not_null() & (pl.col("PROCSTAT") == "A"))
    return frame.with_columns(
        pl.col("MOD").fill_null(""), pl.col("CARRIER").str.zfill(5), pl.col("LOCALITY").str.zfill(2)
    )


def _with_schema(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """`frame` with every column of `schema`, the missing ones null."""
    return frame.select(
        pl.col(column).cast(dtype) if column in frame.columns else pl.lit(None, dtype).alias(column)
        for column, dtype in schema.items()
    )


def compare(cap: pl.DataFrame, frames: ReferenceFrames, year: int) -> pl.DataFrame:
    """One claim of one line per OPPSCAP row and setting, priced; CMS's cents beside the engine's."""
    cases = pl.concat(
        cap.select(
            pl.col("HCPCS").alias("procedure_code"),
            pl.col("MOD").alias("modifier_1"),
            pl.col("CARRIER").alias("mac"),
            pl.col("LOCALITY").alias("locality"),
            pl.lit(pos).alias("place_of_service"),
            pl.lit(setting).alias("setting"),
            (pl.col(column).cast(_E4) * 100).cast(pl.Int64).alias("cms_cents"),
        )
        for setting, (pos, column) in SETTINGS.items()
    ).with_row_index("claim_id", offset=1)
    cases = cases.with_columns(pl.col("claim_id").cast(pl.Int64))
    claims = cases.select("claim_id", "mac", "locality", "place_of_service", pl.lit("1000000004").alias("billing_npi"))
    lines = cases.select(
        "claim_id",
        pl.lit(1).alias("line_number"),
        pl.lit(date(year, 12, 1)).alias("service_date"),
        "procedure_code",
        pl.when(pl.col("modifier_1") != "").then(pl.col("modifier_1")).alias("modifier_1"),
        pl.lit(1).alias("units"),
        pl.lit(10**9).alias("charge_cents"),
    )
    priced = price(_with_schema(claims, CLAIMS), _with_schema(lines, LINES), frames)
    return cases.join(
        priced.lines.select("claim_id", "fee_schedule_cents", "allowed_cents", "pricing_note"), on="claim_id"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rvu", type=Path, required=True)
    parser.add_argument("--gpci", type=Path, required=True)
    parser.add_argument("--oppscap", type=Path, required=True)
    parser.add_argument("--year", type=int, required=True)
    parser.add_argument("--work-gpci", choices=("floor", "no-floor"), default=None)
    args = parser.parse_args()
    frames = reference(args.rvu, args.gpci, args.year, args.work_gpci)
    cap = oppscap_rows(args.oppscap)
    localities = frames.gpci.select(pl.col("mac").alias("CARRIER"), pl.col("locality").alias("LOCALITY"))
    priceable = cap.join(localities, on=["CARRIER", "LOCALITY"], how="semi")
    skipped = cap.join(localities, on=["CARRIER", "LOCALITY"], how="anti")
    if skipped.height:
        where = ", ".join(f"{m}-{loc}" for m, loc in skipped.select("CARRIER", "LOCALITY").unique().sort("*").rows())
        print(f"OPPSCAP rows skipped, their locality is not in the GPCI file: {skipped.height} ({where})")
    result = compare(priceable, frames, args.year)
    differ = result.filter(pl.col("allowed_cents") != pl.col("cms_cents"))
    capped = result.filter(pl.col("cms_cents") < pl.col("fee_schedule_cents"))
    print(f"lines priced: {result.height} (OPPSCAP rows x 2 settings)")
    print(f"CMS's capped amount below the PFS amount: {capped.height}")
    print(f"engine notes OPPS_CAP: {result.filter(pl.col('pricing_note').str.contains('OPPS_CAP')).height}")
    print(f"engine allowed == CMS's amount to the cent: {result.height - differ.height}; differ: {differ.height}")
    if differ.height:
        print(differ.head(10))
    sys.exit(1 if differ.height else 0)


if __name__ == "__main__":
    main()
