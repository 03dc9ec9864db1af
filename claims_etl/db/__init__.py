"""The source side: PostgreSQL staging sessions (`source`), its reads into frames and COPY
(`source_reads`), SQL loaded from queries/ (`sql`). The warehouse side is claims_etl/targets/."""
