"""The headless command line: the same services as the pages, no copy of their logic."""
