"""Recipes and plans: the recipe model, sandboxed templates, sampling, demonstrations, versions, YAML."""
