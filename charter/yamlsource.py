"""YAML documents that remember where each value came from (file and line)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

Path_ = tuple[str | int, ...]
_FAST_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser where PyYAML was built with it; it keeps line marks too."""

MAX_YAML_DEPTH = 64
"""How deep collections may nest: an org file is a few levels deep, and building a much
deeper one overflows the stack (libyaml's composer crashes the process)."""
MAX_ALIAS_VALUES = 200_000
"""How many values aliases may add to a document: each use of `*name` repeats every
value under its anchor, so a few lines can otherwise expand to billions."""


@dataclass(frozen=True)
class SourceProblem:
    """One problem found in a source file, with where it is."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path + ': ' if self.path else ''}{self.message}"


@dataclass
class LocatedDocument:
    """A parsed YAML document and the line of each value in it."""

    file: str
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Sequence[str | int]) -> int | None:
        """The line of the deepest part of `path` that the document has.

        Parts the document does not have (a validator's tag, say) are skipped.
        """
        found: Path_ = ()
        line = self.lines.get(())
        for part in path:
            candidate = (*found, part)
            if candidate in self.lines:
                found = candidate
                line = self.lines[candidate]
        return line

    def problem(self, path: Sequence[str | int], message: str) -> SourceProblem:
        return SourceProblem(self.file, self.line_of(path), format_path(path), message)


def format_path(path: Iterable[str | int]) -> str:
    """`('members', 3, 'capacity')` → `members[3].capacity`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def load_located(text: str, file: str) -> tuple[LocatedDocument | None, list[SourceProblem]]:
    """Parse one YAML document, keeping lines; report syntax errors, duplicate keys and
    documents too deep or too large to build (see `shape_problem`)."""
    refused = shape_problem(text, file)
    if refused is not None:
        return None, [refused]
    try:
        root = yaml.compose(text, Loader=_FAST_LOADER)
    except yaml.reader.ReaderError as error:
        return None, [_unreadable(text, file, error)]
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(error, "problem", None) or str(error)
        context = getattr(error, "context", None)
        message = f"YAML syntax error: {reason}" + (f" ({context})" if context else "")
        return None, [SourceProblem(file, line, "", message)]
    document = LocatedDocument(file, None)
    problems: list[SourceProblem] = []
    if root is None:
        return document, problems
    document.lines[()] = root.start_mark.line + 1
    document.data = _build(root, (), document, problems, yaml.SafeLoader(""))
    return document, problems


def _unreadable(text: str, file: str, error: yaml.reader.ReaderError) -> SourceProblem:
    """A character YAML does not allow, at its line (the reader gives a position)."""
    line = text.count("\n", 0, error.position) + 1
    character = error.character
    code = f"#x{character:04x}" if isinstance(character, int) else repr(character)
    return SourceProblem(file, line, "", f"YAML syntax error: unacceptable character "
                                         f"{code}: control characters are not allowed in "
                                         f"YAML (remove it)")


def shape_problem(text: str, file: str) -> SourceProblem | None:
    """Why `text` must not be built, or None: collections nested deeper than
    `MAX_YAML_DEPTH`, an alias inside the value it names (which never ends), or aliases
    adding more than `MAX_ALIAS_VALUES` values. Read from the parser's events, before
    anything is built; syntax errors are left to the parse that follows."""
    open_nodes: list[list[Any]] = []  # [anchor, values so far] of each open collection
    sizes: dict[str, int] = {}  # values under each anchor, its aliases expanded
    added = 0
    try:
        for event in yaml.parse(text, Loader=_FAST_LOADER):
            line = event.start_mark.line + 1 if event.start_mark is not None else None
            if isinstance(event, yaml.CollectionStartEvent):
                open_nodes.append([event.anchor, 1])
                if len(open_nodes) > MAX_YAML_DEPTH:
                    return SourceProblem(file, line, "", f"nested too deeply: at most "
                                                         f"{MAX_YAML_DEPTH} levels")
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                anchor, size = open_nodes.pop()
            elif isinstance(event, yaml.AliasEvent):
                if any(node[0] == event.anchor for node in open_nodes):
                    return SourceProblem(file, line, "", f"the alias *{event.anchor} is "
                                                         "inside the value it names")
                anchor, size = None, sizes.get(str(event.anchor), 1)
                added += size
                if added > MAX_ALIAS_VALUES:
                    return SourceProblem(file, line, "", f"too large: aliases expand it by "
                                                         f"more than {MAX_ALIAS_VALUES} values")
            elif isinstance(event, yaml.ScalarEvent):
                anchor, size = event.anchor, 1
            else:
                continue
            if anchor is not None:
                sizes[anchor] = size
            if open_nodes:
                open_nodes[-1][1] += size
    except yaml.YAMLError:
        pass  # the parse that follows reports it, with its line
    return None


def _build(node: yaml.Node, path: Path_, document: LocatedDocument,
           problems: list[SourceProblem], loader: yaml.SafeLoader) -> Any:
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _build(key_node, path, document, problems, loader)
            if isinstance(key, list | dict):
                problems.append(SourceProblem(document.file, key_node.start_mark.line + 1,
                                              format_path(path), "a key must be a plain value"))
                continue
            child = (*path, key)
            if key in result:
                problems.append(SourceProblem(
                    document.file, key_node.start_mark.line + 1, format_path(child),
                    f"duplicate key {key!r} (first on line {document.lines[child]})"))
                continue
            document.lines[child] = key_node.start_mark.line + 1
            result[key] = _build(value_node, child, document, problems, loader)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            document.lines[(*path, index)] = item.start_mark.line + 1
            items.append(_build(item, (*path, index), document, problems, loader))
        return items
    return loader.construct_object(node, deep=True)
