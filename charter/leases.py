"""Leases: time-bounded exclusive or shared holds on named resources, with fencing tokens."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

from charter.ledger import Event

PROJECTORS: dict[str, Callable[[Connection, Event], None]] = {}
"""What this concept's events do to the read tables."""
