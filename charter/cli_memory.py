"""`charter memory` commands."""

from __future__ import annotations
