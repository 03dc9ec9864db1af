-- One claim, whatever its status, and its lines, in one statement (`claims-etl explain`; read-only, no
-- lease). :claim_id is rendered by claims_etl.db.sql.quote. The rows are staging.etl_rows' (claim rows and
-- line rows, split by stages/extract.split_rows) with the claim's source status beside them (null on line
-- rows), so the status shown is of the same snapshot as the rows explained.
SELECT r.*, c.status
FROM staging.etl_rows AS r
LEFT JOIN staging.claims AS c ON c.claim_id = r.claim_id AND NOT r.is_line
WHERE r.claim_id = :claim_id
