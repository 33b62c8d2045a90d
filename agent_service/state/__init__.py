"""State shared by the agent service's replicas, in PostgreSQL (``DATABASE_URL``)."""
