from claims_etl.cli import app

app(prog_name="claims-etl")
