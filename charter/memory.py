"""Memory: notes, facts and summaries kept about subjects and members, searchable and governed."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

from charter.ledger import Event

PROJECTORS: dict[str, Callable[[Connection, Event], None]] = {}
"""What this concept's events do to the read tables."""
