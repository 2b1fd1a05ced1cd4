"""The group-commit writer of bare decisions: a failure no retry mends is reported at
once, not after the flush timeout."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from charter import Settings
from charter.errors import ConfigurationError
from charter.store import open_store
from charter.system import Charter
from tests.conftest import EXAMPLE_ORG


def test_a_missing_secret_file_is_reported_at_once(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'charter.db'}"
    settings = Settings(org=EXAMPLE_ORG)  # the secret lives in charter.db.secret
    with Charter(open_store(url, settings), settings) as system:
        system.load_org(EXAMPLE_ORG)
    (tmp_path / "charter.db.secret").unlink()
    system = Charter(open_store(url, settings), settings)
    decision = system.authorize("buyer-bot-1", "purchase.create", "Vendor::globex",
                                {"amount": 100})
    assert decision.outcome == "allow"
    started = time.monotonic()
    with pytest.raises(ConfigurationError, match=r"charter.db.secret is missing"):
        system.flush_decisions()
    assert time.monotonic() - started < 10
    with pytest.raises(ConfigurationError):
        system.close()
