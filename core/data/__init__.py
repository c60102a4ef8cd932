"""The data layer: the database (DuckDB or PostgreSQL), its SQL dialects and the schema migrations."""
from core.data.database import (Cursor, Database, DuckDatabase, PostgresDatabase, display_url, dumps, loads, marks,
                                open_database, utcnow)
from core.data.dialect import Dialect

__all__ = ["Cursor", "Database", "Dialect", "DuckDatabase", "PostgresDatabase", "display_url", "dumps", "loads",
           "marks", "open_database", "utcnow"]
