"""The `cxmon` command line: one module per command group."""
