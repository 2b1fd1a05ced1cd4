"""The review draw and the sampling rates of an evaluation."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from charter.errors import OrgInvalid
from charter.org import read_org
from charter.reviews import draw, rate_for
from charter.types import Evaluation

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "acme" / "charter.yaml"


def test_the_draw_is_fixed_per_task_and_unknowable_without_the_secret():
    task = str(uuid.uuid4())
    assert draw(b"secret", "acme", task) == draw(b"secret", "acme", task)
    assert draw(b"secret", "acme", task) != draw(b"other", "acme", task)
    assert draw(b"secret", "acme", task) != draw(b"secret", "globex", task)
    numbers = [draw(b"secret", "acme", str(uuid.uuid4())) for _ in range(4000)]
    assert all(0 <= n < 1 for n in numbers)
    assert sum(n < 0.25 for n in numbers) == pytest.approx(1000, abs=120)  # ~4.4 sigma


def test_one_rate_or_a_rate_per_autonomy_level():
    single = Evaluation(evaluator="qa", sample=0.2)
    assert [rate_for(single, level) for level in ("supervised", "notify", "autonomous")] == [
        0.2, 0.2, 0.2]
    levels = Evaluation(evaluator="qa", sample={"autonomous": 0.1, "supervised": 1.0})
    assert (rate_for(levels, "autonomous"), rate_for(levels, "notify"),
            rate_for(levels, "supervised")) == (0.1, 0.0, 1.0)
    with pytest.raises(ValidationError):
        Evaluation(evaluator="qa", sample=1.5)
    with pytest.raises(ValidationError):
        Evaluation(evaluator="qa", sample={"sometimes": 0.5})


def test_an_unknown_evaluator_or_action_is_refused_with_where(tmp_path: Path):
    org = yaml.safe_load(EXAMPLE.read_text())
    org["task_types"][0]["evaluation"] = {"evaluator": "nobody", "sample": 0.1,
                                          "action": "purchase.judge"}
    (tmp_path / "policies").mkdir()
    path = tmp_path / "charter.yaml"
    path.write_text(yaml.safe_dump(org, sort_keys=False))
    with pytest.raises(OrgInvalid) as refused:
        read_org(path)
    text = refused.value.message
    assert "task_types[0].evaluation.evaluator: unknown member `nobody`" in text
    assert "task_types[0].evaluation.action: unknown action `purchase.judge`" in text
