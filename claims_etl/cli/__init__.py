"""The `claims-etl` command line: `app` (assembled from `commands/`), its shared options (`options`),
what every command does around its work (`invocation`), help (`help`) and terminal rendering (`render`)."""
