"""Concurrent nodes on PostgreSQL: two `charter serve` processes on one database are one
system — 4,000 tasks submitted, claimed and completed through both by 8 clients, each
completed exactly once, and the ledger verifies. The scenario is defined once, in
tests/acceptance/test_serve_nodes.py; the reliability suite runs it from there (it is
skipped without CHARTER_TEST_POSTGRES)."""

from __future__ import annotations

import pytest

from tests.acceptance.test_serve_nodes import (
    nodes,
    test_two_servers_on_one_postgresql_complete_every_task_once,
)
from tests.conftest import POSTGRES_URL

pytestmark = [pytest.mark.slow, pytest.mark.reliability,
              pytest.mark.skipif(not POSTGRES_URL, reason="CHARTER_TEST_POSTGRES is not set")]

__all__ = ["nodes", "test_two_servers_on_one_postgresql_complete_every_task_once"]
