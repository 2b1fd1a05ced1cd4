"""The circuit breaker's state machine, its rules in the org file, and whom they cover."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from charter.breakers import (
    BreakerState,
    Counts,
    admission,
    after_result,
    rule_for,
    tripped,
)
from charter.errors import OrgInvalid
from charter.org import read_org
from charter.types import BreakerRule

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "acme" / "charter.yaml"


def test_failures_within_the_window_open_it():
    rule = BreakerRule(failures=5, cool_down=timedelta(minutes=2))
    closed = BreakerState()
    assert after_result(closed, rule, task_id="t", success=False, counts=Counts(9, 4),
                        now=NOW) is None
    opened = after_result(closed, rule, task_id="t", success=False, counts=Counts(9, 5),
                          now=NOW)
    assert opened is not None and opened.to == "open"
    assert opened.until == NOW + timedelta(minutes=2)
    assert opened.reason.startswith("5 failed attempts within 10m00s")
    # a success never opens it, whatever the counts
    assert after_result(closed, rule, task_id="t", success=True, counts=Counts(9, 9),
                        now=NOW) is None


def test_the_error_rate_counts_only_with_enough_attempts():
    rule = BreakerRule(error_rate=0.5, min_calls=10)
    assert tripped(rule, Counts(4, 4)) is None  # 100%, but 4 < min_calls
    assert tripped(rule, Counts(10, 4)) is None  # 40%
    why = tripped(rule, Counts(10, 5))
    assert why is not None and "5 of 10 attempts" in why and "50%" in why
    both = BreakerRule(failures=3, error_rate=0.9, min_calls=100)
    assert tripped(both, Counts(4, 3)) is not None  # the count trips it before the rate


def test_only_the_probe_decides_a_half_open_breaker():
    rule = BreakerRule(failures=1, cool_down=timedelta(minutes=1))
    half = BreakerState("half_open", NOW, None, "probe")
    assert after_result(half, rule, task_id="older", success=False, counts=Counts(),
                        now=NOW) is None
    closed = after_result(half, rule, task_id="probe", success=True, counts=Counts(),
                          now=NOW)
    assert closed is not None and closed.to == "closed"
    later = NOW + timedelta(minutes=5)
    reopened = after_result(half, rule, task_id="probe", success=False, counts=Counts(),
                            now=later)
    assert reopened is not None and reopened.to == "open"
    assert reopened.until == later + timedelta(minutes=1)  # a new cool-down
    # an open breaker ignores attempts that started before it opened
    assert after_result(BreakerState("open", NOW, later), rule, task_id="x", success=True,
                        counts=Counts(), now=NOW) is None


def test_admission_follows_the_cool_down_and_the_probe():
    until = NOW + timedelta(minutes=1)
    opened = BreakerState("open", NOW, until, None, "3 failed attempts")
    refused = admission(opened, NOW, probe_live=False)
    assert not refused.eligible and "open until" in refused.reason
    assert "3 failed attempts" in refused.reason
    probe = admission(opened, until, probe_live=False)
    assert probe.eligible and probe.probe
    half = BreakerState("half_open", until, None, "p")
    assert not admission(half, until, probe_live=True).eligible
    assert admission(half, until, probe_live=False).probe  # the probe went elsewhere
    assert admission(BreakerState(), NOW, probe_live=False) == admission(
        BreakerState(), NOW, probe_live=True)


def test_breaker_rules_are_checked_with_clear_errors():
    with pytest.raises(ValidationError, match="give at least one"):
        BreakerRule(window=timedelta(minutes=5))
    with pytest.raises(ValidationError, match="at most 1h"):
        BreakerRule(failures=3, window="2h")
    with pytest.raises(ValidationError):
        BreakerRule(error_rate=1.5)
    with pytest.raises(ValidationError):
        BreakerRule(failures=0)
    assert BreakerRule(enabled=False).enabled is False


def _org_with(tmp_path: Path, edit: dict[str, object],
              member_breakers: dict[str, object] | None = None) -> Path:
    org = yaml.safe_load(EXAMPLE.read_text())
    org.update(edit)
    for member in org["members"]:
        if member["id"] in (member_breakers or {}):
            member["breaker"] = (member_breakers or {})[member["id"]]
    target = tmp_path / "charter.yaml"
    target.write_text(yaml.safe_dump(org, sort_keys=False))
    (tmp_path / "policies").mkdir(exist_ok=True)
    return target


def test_the_org_breaker_covers_agents_and_members_may_replace_it(tmp_path: Path):
    org = read_org(_org_with(tmp_path, {"breaker": {"failures": 5}}, {
        "buyer-bot-2": {"error_rate": 0.5, "min_calls": 20}, "triage-bot": False,
        "james.liu": {"failures": 2}}))
    assert rule_for(org, "buyer-bot-1") == BreakerRule(failures=5)
    assert rule_for(org, "buyer-bot-2") == BreakerRule(error_rate=0.5, min_calls=20)
    assert rule_for(org, "triage-bot") is None  # `breaker: off`
    assert rule_for(org, "sofia.alvarez") is None  # people only with their own
    assert rule_for(org, "james.liu") == BreakerRule(failures=2)


def test_a_bad_breaker_in_the_org_file_is_refused_with_where(tmp_path: Path):
    path = _org_with(tmp_path, {"breaker": {"failures": 5, "cool_down": "soon"}},
                     {"buyer-bot-2": {"window": "10m"}})
    with pytest.raises(OrgInvalid) as refused:
        read_org(path)
    text = refused.value.message
    assert "breaker.cool_down" in text and "not a duration" in text
    assert "members[11].breaker" in text and "give at least one" in text
