"""API fixtures: the app over a real Charter (SQLite and PostgreSQL), with tokens."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from charter.api import create_app
from charter.system import Charter

Headers = dict[str, str]


@pytest.fixture
def client(acme: Charter) -> Iterator[TestClient]:
    """A client of the API over the example org (no token attached)."""
    with TestClient(create_app(acme)) as client:
        yield client


@pytest.fixture
def as_member(acme: Charter) -> Callable[..., Headers]:
    """`as_member("buyer-bot-1")` → headers with a fresh bearer token for that member
    (`admin=True` for an admin token)."""
    def headers(member: str, *, admin: bool = False) -> Headers:
        secret = acme.create_token(member, admin=admin).secret
        return {"Authorization": f"Bearer {secret}"}
    return headers


@pytest.fixture
def admin(as_member: Callable[..., Headers]) -> Headers:
    return as_member("dana.whitfield", admin=True)
