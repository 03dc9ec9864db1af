-- The NPIs priced with the QP conversion factor, per service year.
SELECT year::integer AS year, npi FROM staging.qp_npis
