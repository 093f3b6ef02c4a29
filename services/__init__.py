"""The studio's engine: recipes, sampling, plans, storage. Never imports streamlit."""
