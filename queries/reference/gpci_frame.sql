-- GPCI rows of every release for the pricing joins, indices as integers scaled by 10^4 (exact).
SELECT release,
       year::integer AS year,
       mac,
       locality,
       (pw_gpci * 10000)::bigint AS pw_gpci_e4,
       (pe_gpci * 10000)::bigint AS pe_gpci_e4,
       (mp_gpci * 10000)::bigint AS mp_gpci_e4
FROM staging.gpci
ORDER BY release, mac, locality  -- one order for every read: the cache entries are the same bytes
