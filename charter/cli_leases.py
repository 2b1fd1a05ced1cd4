"""`charter leases` commands."""

from __future__ import annotations
