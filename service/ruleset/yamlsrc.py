"""Safe YAML reading that remembers where every value came from.

Auditors fix files by line number, so every error must point at one. PyYAML's safe loader gives us the
values; its node tree gives us the lines. We also refuse duplicate mapping keys, which PyYAML would
otherwise resolve silently by keeping the last one - a quiet way to lose a rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[Any, ...]


@dataclass
class Source:
    """A parsed YAML document with a line number for each path inside it."""

    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    problems: list[tuple[int, str]] = field(default_factory=list)

    def line(self, path: Path) -> int | None:
        """Line of the value at `path`, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)


class YamlSyntaxError(Exception):
    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


MAX_BYTES = 4 * 1024 * 1024


def parse(text: str) -> Source:
    """Parse one YAML document with the safe loader only (no tags, no Python objects).

    Anchors and aliases are refused: a reviewer must be able to read every rule where it stands, and
    aliases are how a small file expands into a huge one.
    """
    if len(text) > MAX_BYTES:
        raise YamlSyntaxError(None, f"file is larger than {MAX_BYTES // (1024 * 1024)} MiB")
    try:
        loader = yaml.SafeLoader(text)  # its reader refuses control characters here, with a position
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(None, str(exc)) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return Source(data=None)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise YamlSyntaxError(line, f"{exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(None, str(exc)) from None
    finally:
        loader.dispose()
    src = Source(data=data)
    _index(node, (), src, set())
    return src


def _index(node: yaml.Node, path: Path, src: Source, seen_nodes: set[int]) -> None:
    if id(node) in seen_nodes:
        src.problems.append((node.start_mark.line + 1, "YAML anchors and aliases are not allowed; write it out"))
        return
    seen_nodes.add(id(node))
    src.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                src.problems.append((key_node.start_mark.line + 1, "mapping keys must be plain text"))
                continue
            key = key_node.value
            key_line = key_node.start_mark.line + 1
            if key in seen:
                src.problems.append((key_line, f"duplicate key `{key}` (first defined on line {seen[key]})"))
                continue
            seen[key] = key_line
            _index(value_node, (*path, key), src, seen_nodes)
            # Errors about a key are better reported on the key's own line.
            src.lines[(*path, key)] = key_line
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*path, i), src, seen_nodes)
