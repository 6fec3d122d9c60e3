"""A strict, bounded YAML loader for recipes, built on PyYAML's SafeLoader.

Why not `yaml.safe_load`: it silently keeps the last of two duplicate keys, expands alias
bombs when the data is walked, reads `yes`/`no`/`on`/`off` as booleans, `1:30` as 90 and
`0.1` as a binary float. A recipe is a controlled document, so this loader is stricter:

* Input is capped at `MAX_BYTES` (1 MiB of UTF-8), nesting at `MAX_DEPTH` levels and the
  number of YAML nodes at `MAX_NODES`, all checked before anything is built (depth and count
  while composing, so deep or wide input never recurses far or runs long). PyYAML's pure-Python
  parser needs ~60 us a node (a 1 MiB list of half a million numbers took 23 s), so when
  libyaml is present its C parser supplies the events (~10 us a node) to the same strict
  composer; only a text libyaml calls a syntax error is parsed again in pure Python, for
  PyYAML's messages (bounded: the error comes before the node limit is reached).
* Anchors and aliases (`&name`, `*name`, and so `<<` merges) are rejected outright rather
  than counted: a recipe is short, reuse belongs in the recipe language, and an error that
  points into shared YAML would point at the wrong place. This also makes alias bombs
  impossible.
* Duplicate keys are rejected, naming both lines; every duplicate in the file is reported.
* Scalars follow a small, predictable set of rules (like YAML 1.2's core schema, minus
  floats): `true`/`false`, `null`/`~`/empty, integers `-?(0|[1-9][0-9]*)` become `int`,
  decimals `-?(0|[1-9][0-9]*).[0-9]+` become `decimal.Decimal` built from the text as
  written (so `1200.50` stays `Decimal("1200.50")`); numbers are at most `MAX_NUMBER_CHARS`
  long. Everything else is text: dates such as `2026-01-01` stay ISO text (the schema
  checks them and the model turns them into `datetime.date`); `1e3`, `.5`, `007`, `1_000`,
  `yes`, `on` and `1:30` are text too, so a schema error asks for a plain number or
  true/false instead of a surprising value slipping through. Keys are always text.
* Explicit tags other than the core ones (`!!str`, `!!int`, `!!float`, `!!bool`, `!!null`,
  `!!map`, `!!seq`) are rejected.
* Mappings come back as `LineDict` and sequences as `LineList`, which remember the line and
  column of every key and item, so any later error can name its place (see `position_of`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from recipes.errors import PathPart, Problem, RecipeError, format_path

try:  # libyaml, shipped in PyYAML's wheels: only speed depends on it, never the result
    from yaml._yaml import CParser as _CParser
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    _CParser = None

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_NUMBER_CHARS = 30
# A recipe of several hundred phases has a few thousand nodes (the example has ~250); this
# bounds the pure-Python parse of anything accepted to well under a second.
MAX_NODES = 20_000

_NULL_TAG = "tag:yaml.org,2002:null"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_STR_TAG = "tag:yaml.org,2002:str"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"

_NULL_RE = re.compile(r"(?:~|null|Null|NULL|)\Z")
_BOOL_RE = re.compile(r"(?:true|True|TRUE|false|False|FALSE)\Z")
_INT_RE = re.compile(r"-?(?:0|[1-9][0-9]*)\Z")
_DECIMAL_RE = re.compile(r"-?(?:0|[1-9][0-9]*)\.[0-9]+\Z")


class LineDict(dict[str, Any]):
    """A YAML mapping that remembers its own position and that of each key (1-based)."""

    __slots__ = ("column", "key_columns", "key_lines", "line")

    def __init__(self, line: int, column: int = 1) -> None:
        super().__init__()
        self.line = line
        self.column = column
        self.key_lines: dict[str, int] = {}
        self.key_columns: dict[str, int] = {}


class LineList(list[Any]):
    """A YAML sequence that remembers its own position and that of each item (1-based)."""

    __slots__ = ("column", "item_columns", "item_lines", "line")

    def __init__(self, line: int, column: int = 1) -> None:
        super().__init__()
        self.line = line
        self.column = column
        self.item_lines: list[int] = []
        self.item_columns: list[int] = []


class _Rejected(Exception):
    def __init__(self, line: int, column: int, path: Sequence[PathPart], message: str) -> None:
        super().__init__(message)
        self.line = line
        self.column = column
        self.path = tuple(path)
        self.message = message


class _RecipeResolver(BaseResolver):
    """Only the implicit types of the module docstring (registered below)."""

    yaml_implicit_resolvers: dict[Any, list[tuple[str, re.Pattern[str]]]] = {}


class _StrictComposer(Composer):
    """Composer with no anchors/aliases, bounded nesting and a bounded number of nodes.

    Use `load_yaml`; the loaders only compose nodes (construction is done by `load_yaml`
    so every problem can be collected with its path).
    """

    def _start_strict(self) -> None:
        self._path: list[PathPart] = []
        self._nodes = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()
        line, column = event.start_mark.line + 1, event.start_mark.column + 1
        pushed = parent is not None and index is not None
        if pushed:
            self._path.append(index if isinstance(index, int) else _key_text(index))
        self._nodes += 1
        try:
            if self._nodes > MAX_NODES:
                raise _Rejected(line, column, self._path, _TOO_MANY_NODES)
            if isinstance(event, AliasEvent):
                raise _Rejected(
                    line,
                    column,
                    self._path,
                    f"YAML aliases (*{event.anchor}) are not allowed in recipes: write the "
                    "value out in full",
                )
            if event.anchor is not None:
                raise _Rejected(
                    line,
                    column,
                    self._path,
                    f"YAML anchors (&{event.anchor}) are not allowed in recipes: remove "
                    f"'&{event.anchor}' and write repeated values out in full",
                )
            if len(self._path) >= MAX_DEPTH:
                raise _Rejected(line, column, self._path, _TOO_DEEP)
            return super().compose_node(parent, index)
        finally:
            if pushed:
                self._path.pop()


_TOO_MANY_NODES = (
    f"the file has more than {MAX_NODES} YAML values (keys, numbers, texts, lists); a master "
    "recipe never needs that many: split the process into several recipes"
)
_TOO_DEEP = (
    f"nested deeper than {MAX_DEPTH} levels; a recipe never needs that, check the indentation "
    "and brackets"
)


_RecipeResolver.add_implicit_resolver(_NULL_TAG, _NULL_RE, ["~", "n", "N", ""])
_RecipeResolver.add_implicit_resolver(_BOOL_TAG, _BOOL_RE, list("tTfF"))
_RecipeResolver.add_implicit_resolver(_INT_TAG, _INT_RE, list("-0123456789"))
_RecipeResolver.add_implicit_resolver(_FLOAT_TAG, _DECIMAL_RE, list("-0123456789"))


class RecipeYamlLoader(_StrictComposer, Reader, Scanner, Parser, _RecipeResolver):
    """The strict composer on PyYAML's pure-Python reader, scanner and parser."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _RecipeResolver.__init__(self)
        self._start_strict()


_FastRecipeYamlLoader: type[_StrictComposer] | None = None
if _CParser is not None:

    class _FastLoader(_StrictComposer, _CParser, _RecipeResolver):  # type: ignore[misc,valid-type]
        """The strict composer on libyaml's event parser."""

        def __init__(self, stream: str) -> None:
            _CParser.__init__(self, stream)
            Composer.__init__(self)
            _RecipeResolver.__init__(self)
            self._start_strict()

    _FastRecipeYamlLoader = _FastLoader


def _key_text(node: Any) -> str:
    return node.value if isinstance(node, ScalarNode) else "?"


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _column(node: Node) -> int:
    return node.start_mark.column + 1


def load_yaml(text: str, source: str = "<recipe>") -> Any:
    """Parse one YAML document under the rules above; raise `RecipeError` listing all problems."""
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > MAX_BYTES:
        raise RecipeError.single(
            source,
            f"the file is {size} bytes; recipes are limited to {MAX_BYTES} bytes (1 MiB). "
            "Split it or remove what does not belong in a master recipe",
        )
    try:
        node = _compose(text)
    except _Rejected as rejected:
        raise RecipeError.single(
            source, rejected.message, rejected.line, format_path(rejected.path), rejected.column
        ) from None
    except yaml.MarkedYAMLError as exc:
        raise RecipeError([_syntax_problem(exc, source)]) from None
    except yaml.YAMLError as exc:
        raise RecipeError([_reader_problem(exc, text, source)]) from None
    if node is None:
        raise RecipeError.single(
            source, "the file is empty; a recipe starts with the line 'ebr_recipe: 1'", 1
        )
    problems: list[Problem] = []
    data = _build(node, (), source, problems)
    if problems:
        raise RecipeError(problems)
    return data


def _compose(text: str) -> Node | None:
    # Reader checks the whole text for characters YAML forbids, as the pure-Python path
    # would, so both paths accept exactly the same texts.
    Reader(text)
    if _FastRecipeYamlLoader is not None:
        fast = _FastRecipeYamlLoader(text)
        try:
            return fast.get_single_node()  # type: ignore[attr-defined,no-any-return]
        except yaml.YAMLError:
            pass  # parsed again below, for PyYAML's own wording of the error
        finally:
            fast.dispose()  # type: ignore[attr-defined]
    loader = RecipeYamlLoader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _syntax_problem(exc: yaml.MarkedYAMLError, source: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    if exc.context == "expected a single document in the stream":
        return Problem(
            source,
            line,
            "",
            "a recipe file holds exactly one YAML document: remove the '---' line and "
            "everything after it, or put the second recipe in its own file",
            column,
        )
    message = f"YAML syntax error: {exc.problem or exc.context}"
    if exc.context and exc.problem and exc.context_mark is not None:
        message += f", {exc.context} at line {exc.context_mark.line + 1}"
    if "'\\t'" in message:
        message += "; indent with spaces, never tabs"
    elif "mapping values are not allowed" in message:
        message += "; check the indentation, or quote text that contains ': '"
    return Problem(source, line, "", message, column)


def _reader_problem(exc: yaml.YAMLError, text: str, source: str) -> Problem:
    position = getattr(exc, "position", None)
    character = getattr(exc, "character", None)
    line = column = None
    if isinstance(position, int):
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
    if isinstance(character, int):
        return Problem(
            source,
            line,
            "",
            f"the text contains the control character U+{character:04X}, which YAML does not "
            "allow; delete it (it is often invisible: retype the line)",
            column,
        )
    return Problem(source, line, "", f"cannot read the YAML text: {exc}", column)


def _build(node: Node, path: tuple[PathPart, ...], source: str, problems: list[Problem]) -> Any:
    if isinstance(node, MappingNode):
        return _build_mapping(node, path, source, problems)
    if isinstance(node, SequenceNode):
        return _build_sequence(node, path, source, problems)
    return _build_scalar(node, path, source, problems)


def _build_mapping(
    node: MappingNode, path: tuple[PathPart, ...], source: str, problems: list[Problem]
) -> LineDict:
    if node.tag != _MAP_TAG:
        problems.append(_bad_tag(node, path, source))
    result = LineDict(_line(node), _column(node))
    for key_node, value_node in node.value:
        line, column = _line(key_node), _column(key_node)
        if not isinstance(key_node, ScalarNode):
            problems.append(
                Problem(
                    source,
                    line,
                    format_path(path),
                    "keys must be plain text, not a list or mapping",
                    column,
                )
            )
            continue
        key = key_node.value
        if key in result.key_lines:
            first = result.key_lines[key]
            problems.append(
                Problem(
                    source,
                    line,
                    format_path((*path, key)),
                    f"duplicate key '{key}': first at line {first}, again at line {line}; "
                    "keep one of them",
                    column,
                )
            )
            continue
        result.key_lines[key] = line
        result.key_columns[key] = column
        result[key] = _build(value_node, (*path, key), source, problems)
    return result


def _build_sequence(
    node: SequenceNode, path: tuple[PathPart, ...], source: str, problems: list[Problem]
) -> LineList:
    if node.tag != _SEQ_TAG:
        problems.append(_bad_tag(node, path, source))
    result = LineList(_line(node), _column(node))
    for index, item in enumerate(node.value):
        result.item_lines.append(_line(item))
        result.item_columns.append(_column(item))
        result.append(_build(item, (*path, index), source, problems))
    return result


def _build_scalar(
    node: ScalarNode, path: tuple[PathPart, ...], source: str, problems: list[Problem]
) -> Any:
    tag, value = node.tag, node.value
    if tag == _STR_TAG:
        return value
    if tag == _NULL_TAG and _NULL_RE.match(value):
        return None
    if tag == _BOOL_TAG and _BOOL_RE.match(value):
        return value.lower() == "true"
    if tag in (_INT_TAG, _FLOAT_TAG) and len(value) > MAX_NUMBER_CHARS:
        problems.append(
            Problem(
                source,
                _line(node),
                format_path(path),
                f"this number has {len(value)} characters; numbers in a recipe are limited to "
                f"{MAX_NUMBER_CHARS}",
                _column(node),
            )
        )
        return value
    if tag == _INT_TAG and _INT_RE.match(value):
        return int(value)
    if tag == _FLOAT_TAG and (_DECIMAL_RE.match(value) or _INT_RE.match(value)):
        return Decimal(value)
    problems.append(_bad_tag(node, path, source))
    return value


def _bad_tag(node: Node, path: tuple[PathPart, ...], source: str) -> Problem:
    shown = node.tag.replace("tag:yaml.org,2002:", "!!")
    return Problem(
        source,
        _line(node),
        format_path(path),
        f"the YAML tag {shown} is not supported here (or does not fit the value); remove the "
        "tag and write plain text, numbers, true/false, lists and mappings",
        _column(node),
    )


def line_of(tree: Any, path: Sequence[PathPart]) -> int | None:
    """The line of the deepest part of `path` that exists in a tree built by `load_yaml`."""
    return position_of(tree, path)[0]


def position_of(tree: Any, path: Sequence[PathPart]) -> tuple[int | None, int | None]:
    """(line, column) of the deepest part of `path` that exists in a tree from `load_yaml`.

    A key's position is where the key is written; a list item's is where the item starts
    (after its '- '). Both are 1-based.
    """
    line, column = getattr(tree, "line", None), getattr(tree, "column", None)
    node = tree
    for part in path:
        if isinstance(node, LineDict) and isinstance(part, str) and part in node:
            line, column = node.key_lines[part], node.key_columns[part]
            node = node[part]
        elif isinstance(node, LineList) and isinstance(part, int) and 0 <= part < len(node):
            line, column = node.item_lines[part], node.item_columns[part]
            node = node[part]
        else:
            break
    return line, column
