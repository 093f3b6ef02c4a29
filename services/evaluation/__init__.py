"""Evaluation: runs (or a run and a dataset) side by side: diversity with intervals, coverage,
cost, faithfulness (embedding probe, LLM judge), train-on-synthetic/test-on-real, label noise,
judge calibration, and the report's export."""
