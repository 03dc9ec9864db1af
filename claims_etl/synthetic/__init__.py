"""Synthetic data in the contract's shapes, for `claims-etl seed`, the benchmarks and the tests: CMS-layout
reference files (`reference_files.py`) and pending claims seeded with their release (`claims.py`)."""

from claims_etl.synthetic.claims import INVALID_RULES, SeedResult, generate_claims, seed
from claims_etl.synthetic.reference_files import (
    YEARS,
    code_pool,
    valid_npis,
    write_gpci_file,
    write_reference_files,
    write_rvu_file,
)

__all__ = [
    "INVALID_RULES",
    "YEARS",
    "SeedResult",
    "code_pool",
    "generate_claims",
    "seed",
    "valid_npis",
    "write_gpci_file",
    "write_reference_files",
    "write_rvu_file",
]
