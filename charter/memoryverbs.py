"""Memory verbs of the `Charter` facade."""

from __future__ import annotations


class MemoryVerbs:
    """Mixed into `Charter`; expects its store, ledger and clock."""
