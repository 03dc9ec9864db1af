-- Every claim's status in the source (claims-etl reconcile, read by connectorx): ids and statuses only.
SELECT claim_id, status
FROM staging.claims
