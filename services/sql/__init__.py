"""SQL: the read-only console, views, the schema browser, example and saved queries."""
