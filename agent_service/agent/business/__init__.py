"""The business data the agent's tools use: the interface and records (``records``), the
embedded SQLite store (``sqlite_store``) and the PostgreSQL one (``postgres_store``)."""
