"""Helpers shared by the tests: service processes, ports, metrics scraping."""
