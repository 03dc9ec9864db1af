-- A chunk's warnings: warn-severity rules (rules file, docs/spec.md §5.1) its priced claims broke.
-- Parameters bind by position: the column order of stages/load.LOAD_SCHEMAS["claim_warnings"] (a unit
-- test checks they agree).
INSERT INTO {claim_warnings} (claim_id, rule_id, run_id) VALUES (?, ?, ?)
