"""The stages, one module each, frames in and frames out: extract, validate (with rules and keying),
price, load. `STAGES` is the one ordered list of a run's stage names; the last four are worked per
claim range."""

STAGES = ("lease", "reference", "extract", "validate", "price", "load")
RANGE_STAGES = STAGES[2:]
