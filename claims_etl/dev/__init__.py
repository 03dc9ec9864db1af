"""Test seams, never imported by the package itself: fault injection for crash tests (`fault_hooks`)
and the command line with it installed (`python -m claims_etl.dev.faulty`)."""
