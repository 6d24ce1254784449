"""Developer scripts run by the Makefile (code generation)."""
