-- Service lines of the claims leased by this run (connectorx; :run_id rendered by quote()).
SELECT cl.claim_id,
       cl.line_number::integer AS line_number,
       cl.service_date,
       cl.procedure_code,
       cl.modifier_1,
       cl.modifier_2,
       cl.modifier_3,
       cl.modifier_4,
       cl.units::bigint AS units,
       (cl.charge * 100)::bigint AS charge_cents,
       cl.place_of_service
FROM staging.claim_lines AS cl
JOIN staging.claim_leases AS l ON l.claim_id = cl.claim_id
WHERE l.run_id = :run_id
