"""claims-etl: columnar ETL for professional medical claims (extract, validate, price, load)."""

__version__ = "0.1.0"
