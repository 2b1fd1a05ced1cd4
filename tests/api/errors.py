"""Checks shared by the API tests."""

from __future__ import annotations

from typing import Any


def refused(response: Any, status: int) -> dict[str, Any]:
    """The error of a refused call: its status, in the one error shape."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"type", "message", "details"}, body
    error: dict[str, Any] = body["error"]
    return error
