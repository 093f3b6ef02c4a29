"""Explore: items, embedders and their cache, layouts and clusters, map jobs, diversity, gaps, warm-up."""
