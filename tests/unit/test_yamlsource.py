import time
from pathlib import Path

import pytest

from charter.errors import OrgInvalid
from charter.org import parse_org
from charter.yamlsource import MAX_ALIAS_VALUES, MAX_YAML_DEPTH, format_path, load_located


def test_lines_are_kept_for_every_value():
    document, problems = load_located("a: 1\nb:\n  - x: 2\n  - x: 3\n", "f.yaml")
    assert problems == []
    assert document is not None
    assert document.data == {"a": 1, "b": [{"x": 2}, {"x": 3}]}
    assert document.line_of(("b", 1, "x")) == 4
    assert document.line_of(("b", 1, "not-there")) == 4


def test_duplicate_keys_are_reported_with_both_lines():
    _, problems = load_located("a: 1\nb: 2\na: 3\n", "f.yaml")
    assert [(p.line, p.path) for p in problems] == [(3, "a")]
    assert "first on line 1" in problems[0].message


def test_syntax_error_names_file_and_line():
    document, problems = load_located("a: [1,\nb: 2\n", "f.yaml")
    assert document is None
    assert problems[0].file == "f.yaml" and problems[0].line is not None
    assert "YAML syntax error" in str(problems[0])


def test_format_path():
    assert format_path(("members", 3, "capacity")) == "members[3].capacity"
    assert format_path(()) == ""


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n"
    for p, c in zip("abcdefghi", "bcdefghij", strict=True))
"""Ten lines that expand to ten billion values."""


DEEP = (f"at most {MAX_YAML_DEPTH} levels", "exceeded maximum nesting depth")
"""Too deep: Charter's limit, or (with LibYAML) the parser's own, whichever is met first."""


@pytest.mark.parametrize(("text", "line", "fragment"), [
    (ALIAS_BOMB, 6, f"more than {MAX_ALIAS_VALUES} values"),
    ("a: 1\nb: &b [1, *b]\n", 2, "alias *b is inside the value it names"),
    ("a: 1\nb: &b {c: [*b]}\n", 2, "alias *b is inside the value it names"),
    ("a:\n  b: " + "[" * 100_000, 2, DEEP),
    ("a: " + "{b: " * 1000 + "1" + "}" * 1000, 1, DEEP),
], ids=["alias-bomb", "self-reference", "self-reference-deeper", "deep-lists",
        "deep-mappings"])
def test_documents_too_large_or_deep_to_build_are_refused(text: str, line: int,
                                                          fragment: str | tuple[str, ...]):
    started = time.perf_counter()
    document, problems = load_located(text, "f.yaml")
    assert time.perf_counter() - started < 2
    assert document is None
    (problem,) = problems
    assert (problem.file, problem.line) == ("f.yaml", line)
    expected = (fragment,) if isinstance(fragment, str) else fragment
    assert any(words in problem.message for words in expected), problem.message
    assert str(problem).startswith(f"f.yaml:{line}: ")


def test_aliases_and_nesting_within_the_limits_are_read():
    defaults = "defaults: &defaults {capacity: 5, skills: [a, b]}\n"
    members = "".join(f"  - {{<<: *defaults, id: m{i}}}\n" for i in range(1000))
    levels = MAX_YAML_DEPTH - 1  # under the top-level mapping
    deep = "deep: " + "[" * levels + "]" * levels + "\n"
    document, problems = load_located(defaults + "members:\n" + members + deep, "f.yaml")
    assert problems == []
    assert document is not None
    assert document.data["members"][999] == {"capacity": 5, "skills": ["a", "b"],
                                             "id": "m999"}
    assert document.line_of(("members", 999)) == 1002


def test_the_org_refuses_an_alias_bomb_with_its_place(tmp_path: Path):
    (tmp_path / "policies").mkdir()
    with pytest.raises(OrgInvalid) as caught:
        parse_org("org: {id: acme, name: Acme}\n" + ALIAS_BOMB, "charter.yaml", tmp_path)
    assert caught.value.details == [{
        "file": "charter.yaml", "line": 7, "path": "",
        "message": f"too large: aliases expand it by more than {MAX_ALIAS_VALUES} values"}]
    assert "charter.yaml:7: too large" in caught.value.message
