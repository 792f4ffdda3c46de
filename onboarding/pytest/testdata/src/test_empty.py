"""A module with no tests."""
