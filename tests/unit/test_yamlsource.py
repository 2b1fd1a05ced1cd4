from charter.yamlsource import format_path, load_located


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
