"""Unit tests: one piece at a time, fakes allowed."""
