from datetime import timedelta
from pathlib import Path

from charter.testing import ManualClock, test_charter


def test_embedders_get_a_real_charter_with_a_movable_clock(tmp_path: Path):
    clock = ManualClock()
    with test_charter(tmp_path, clock=clock) as system:
        decision = system.authorize("buyer-bot-1", "purchase.create", "Vendor::globex",
                                    {"amount": 30000})
        assert decision.outcome == "escalate"
        clock.advance(timedelta(days=8))
        system.apply_approval_timeouts()
        assert system.approval(decision.approval_id or "").status == "expired"
        assert system.verify_ledger().ok
