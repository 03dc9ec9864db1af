-- Bulk rows into a source table as CSV (db/connections.copy_frame): strings quoted, so "" is an empty
-- string and a bare field is NULL. {table} and {columns} are identifiers.
COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)
