"""`charter proposals` commands."""

from __future__ import annotations
