from claims_etl.cli.app import app

app(prog_name="claims-etl")
