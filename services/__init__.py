"""The studio's engine, one subpackage per workflow stage (docs/architecture.md). Never imports streamlit."""
