"""The `claims-etl` command line (`app`) and its terminal rendering (`render`)."""
