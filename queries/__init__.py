"""The SQL of claims-etl, one folder per owner, shipped as the package claims_etl.queries and read by claims_etl.db.sql."""
