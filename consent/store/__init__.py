"""The broker's storage: SQLModel tables on SQLite (default, WAL) or PostgreSQL (asyncpg)."""
