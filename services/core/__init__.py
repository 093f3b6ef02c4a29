"""Shared foundation: the store and its migrations, settings, paths, hashing, the clock, errors."""
