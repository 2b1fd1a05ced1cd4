"""Dashboard fixtures: the app over a real Charter, and a signed-in browser-less client."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from charter.api import create_app
from charter.system import Charter


@pytest.fixture
def web(acme: Charter) -> Iterator[TestClient]:
    """A client of the dashboard over the example org, not signed in."""
    with TestClient(create_app(acme), base_url="http://charter.test") as client:
        yield client


@pytest.fixture
def sign_in(acme: Charter, web: TestClient) -> Callable[..., str]:
    """`sign_in("james.liu")` signs the client in as that member; returns the page's
    CSRF token."""
    def signed_in(member: str, *, admin: bool = False) -> str:
        secret = acme.create_token(member, admin=admin).secret
        response = web.post("/signin", data={"token": secret, "next": "/"})
        assert response.status_code == 200, response.text
        return csrf_of(response.text)
    return signed_in


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "the page carries no CSRF token"
    return found.group(1)
