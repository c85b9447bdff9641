"""Load YAML into plain Python data while remembering where every node came from.

PyYAML silently keeps the last of duplicate keys and forgets positions once data is constructed, so we compose the
node tree ourselves: duplicate keys become diagnostics and every path maps to its line and column (1-based).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from finetune.errors import Diagnostics, Location

# libyaml's parser when PyYAML was built with it (composes the same nodes and marks, ~5x faster)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Path = tuple[str | int, ...]


@dataclass
class SourceMap:
    """Where each value (and each mapping key) sits in the file."""

    file: str
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: Path, *, key: bool = False) -> Location:
        """Position of `path`, falling back to the nearest ancestor that exists in the file."""
        table = self.keys if key else self.values
        probe = tuple(path)
        while probe:
            if probe in table:
                return Location(self.file, *table[probe])
            if probe in self.values:
                return Location(self.file, *self.values[probe])
            probe = probe[:-1]
        return Location(self.file, *self.values.get((), (1, 1)))


_PLAIN_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("map", "seq", "str", "int", "float", "bool", "null", "timestamp")}


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Builder:
    def __init__(self, source: SourceMap, diags: Diagnostics) -> None:
        self.source = source
        self.diags = diags
        self.scalars = yaml.SafeLoader("")  # only its scalar resolver/constructor is used

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.source.values[path] = _mark(node)
        if node.tag not in _PLAIN_TAGS:
            self.diags.error(f"YAML tag {node.tag} is not allowed", path=_dotted(path), location=self._loc(node),
                             hint="specs hold plain data: remove the tag")
            return None
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    self.diags.error("YAML merge keys ('<<') are not supported", location=self._loc(key_node),
                                     hint="write the keys out")
                    continue
                key = self.build_key(key_node)
                if key in result:
                    first = self.source.keys.get(path + (key,))
                    where = f" (first defined at line {first[0]})" if first else ""
                    self.diags.error(f"duplicate key '{key}'{where}", path=_dotted(path + (key,)),
                                     location=self._loc(key_node), hint="remove one of them")
                    continue
                self.source.keys[path + (key,)] = _mark(key_node)
                result[key] = self.build(value_node, path + (key,))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        try:
            return self.scalars.construct_object(node, deep=True)
        except ValueError:  # an integer past Python's 4300-digit string conversion limit
            self.diags.error(f"{len(node.value)}-digit number is too large", path=_dotted(path),
                             location=self._loc(node), hint="use a smaller number")
            return None

    def build_key(self, node: yaml.Node) -> str:
        if not isinstance(node, yaml.ScalarNode):
            self.diags.error("mapping keys must be plain strings", location=self._loc(node))
            return f"<invalid key at line {node.start_mark.line + 1}>"
        try:
            return str(self.scalars.construct_object(node))
        except ValueError:  # a key past Python's 4300-digit integer conversion limit: keep its text
            return str(node.value)

    def _loc(self, node: yaml.Node) -> Location:
        return Location(self.source.file, *_mark(node))


def _dotted(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


dotted = _dotted


def load_yaml(text: str, file: str, diags: Diagnostics) -> tuple[Any, SourceMap]:
    """Parse `text`; problems go to `diags`. Returns (data or None, source map)."""
    source = SourceMap(file)
    try:
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        problem = exc.problem or exc.context or "invalid YAML"
        start = exc.context_mark
        if exc.context and start is not None and mark is not None and start.line != mark.line:
            problem += f" ({exc.context} at line {start.line + 1}, column {start.column + 1})"
        diags.error(f"YAML syntax error: {problem}", location=Location(file, line, col),
                    hint="check indentation, quotes and ':' separators")
        return None, source
    except yaml.YAMLError as exc:  # e.g. more than one document
        diags.error(f"YAML error: {str(exc).splitlines()[0]}", location=Location(file, 1, 1))
        return None, source
    if root is None:
        diags.error("the spec file is empty", location=Location(file, 1, 1),
                    hint="start from `finetune init`, or see examples/phi3-ultrachat.yaml")
        return None, source
    try:
        data = _Builder(source, diags).build(root, ())
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        diags.error(f"YAML error: {exc.problem}", location=Location(file, mark.line + 1, mark.column + 1) if mark
                    else Location(file))
        return None, source
    return data, source
