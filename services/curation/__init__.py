"""Curation: filter steps, pipelines and their store, human review, side-by-side comparison, export."""
