"""Lease verbs of the `Charter` facade."""

from __future__ import annotations


class LeaseVerbs:
    """Mixed into `Charter`; expects its store, ledger and clock."""
