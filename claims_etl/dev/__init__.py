"""Development tools: synthetic CMS-layout data (`seed`) and fault injection for crash tests (`fault_hooks`)."""
