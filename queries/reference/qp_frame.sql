-- The NPIs priced with the QP conversion factor, per service year.
SELECT year::integer AS year, npi FROM staging.qp_npis
ORDER BY year, npi  -- one order for every read: the cache entries are the same bytes
