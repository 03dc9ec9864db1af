"""`python -m claims_etl.dev.faulty <claims-etl arguments>`: the command line with the crash tests'
fault hooks installed (claims_etl/dev/fault_hooks.py), so that `CLAIMS_ETL_FAULT` and its siblings
fire in the runs and reprices it starts. The plain `claims-etl` ignores them, with one warning."""

from claims_etl import faults
from claims_etl.cli.app import app
from claims_etl.dev import fault_hooks

if __name__ == "__main__":
    faults.install(fault_hooks.from_settings)
    app(prog_name="claims-etl")
