"""Generation: backends (one factory), the built-in model server, the runner, runs in the store, forecasts."""
