"""Proposals: decisions members put forward on a subject and key, and how disagreeing
ones are arbitrated."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

from charter.ledger import Event

PROJECTORS: dict[str, Callable[[Connection, Event], None]] = {}
"""What this concept's events do to the read tables."""
