"""The SQL store and the workflow over it, on SQLite and PostgreSQL."""
