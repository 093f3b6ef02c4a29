"""The bundled demo: shipped recipes and demo runs, loaded idempotently."""
