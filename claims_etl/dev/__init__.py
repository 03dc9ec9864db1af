"""Development tools: synthetic CMS-layout data (`seed`), fault injection for crash tests (`fault_hooks`)
and the command line with it installed (`python -m claims_etl.dev.faulty`)."""
