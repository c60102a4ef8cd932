"""Fixtures of the core suite."""
from __future__ import annotations

import pytest

from tests.conftest import DB_BACKENDS


@pytest.fixture(params=DB_BACKENDS)
def db_backend(request: pytest.FixtureRequest) -> str:
    """Every test here that touches the database runs on DuckDB and on PostgreSQL."""
    return request.param
