"""Traffic profiles compose with libyaml exactly as with PyYAML's Python loader."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lbguard.traffic_yaml import _FAST_LOADER, compose

pytestmark = pytest.mark.skipif(_FAST_LOADER is None, reason="PyYAML built without libyaml")

NodeShape = tuple[object, ...]


def shape(node: yaml.Node | None) -> NodeShape | None:
    """Return what the profile reader uses of a node tree: kinds, tags, values, marks."""
    if node is None:
        return None
    mark = (node.start_mark.line, node.start_mark.column)
    if isinstance(node, yaml.ScalarNode):
        return ("scalar", node.tag, node.value, mark)
    if isinstance(node, yaml.SequenceNode):
        return ("sequence", node.tag, tuple(shape(item) for item in node.value), mark)
    assert isinstance(node, yaml.MappingNode)
    pairs = tuple((shape(key), shape(value)) for key, value in node.value)
    return ("mapping", node.tag, pairs, mark)


def python_outcome(text: str) -> tuple[object, ...]:
    """Return the Python loader's tree for *text*, or its error type and message."""
    try:
        return ("tree", shape(yaml.compose(text, Loader=yaml.SafeLoader)))
    except yaml.YAMLError as error:
        return ("error", type(error), str(error))


def fast_outcome(text: str) -> tuple[object, ...]:
    try:
        return ("tree", shape(compose(text)))
    except yaml.YAMLError as error:
        return ("error", type(error), str(error))


PROFILE_PIECES = [
    "requests: 1000\n",
    "paths:\n",
    "  /a: 3\n",
    "  - /b\n",
    "  /c?x=1: 0.5\n",
    "hosts: [a.example, 'b.example']\n",
    'headers: {x-user: "u1"}\n',
    "# comment\n",
    "clients:\n  - 10.0.0.0/30\n",
    "methods: {GET: 2, POST: 1}\n",
    "  key: |\n    block\n",
    "  folded: >\n    one\n    two\n",
    "  anchor: &a 1\n  alias: *a\n",
    "  tagged: !!str 5\n",
    "\t",
    "  ",
    ": ",
    "- ",
    "'",
    '"',
    "{",
    "}",
    "[",
    "]",
    ",",
    "\n",
    "\r\n",
    "\x85",
    "\u2028",
    "é",
    "%YAML 1.1\n---\n",
    "...\n",
    "? ",
]


@given(st.lists(st.sampled_from(PROFILE_PIECES), max_size=12))
@settings(max_examples=2000, deadline=None)
@example(["requests: 1000\n", "paths:\n", "  /a: 3\n"])
@example(["paths:\n", "  - /b\n", "\t", "  /a: 3\n"])
def test_compose_equals_python_loader(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert fast_outcome(text) == python_outcome(text)


@given(st.text(alphabet=st.sampled_from(list(":-#'\"{}[],&*!|>?% \t\nab1/é")), max_size=40))
@settings(max_examples=3000, deadline=None)
def test_compose_equals_python_loader_on_any_text(text: str) -> None:
    assert fast_outcome(text) == python_outcome(text)


def test_syntax_error_keeps_python_message() -> None:
    text = "paths:\n  /a: 1\n /b: [\n"

    outcome = fast_outcome(text)

    assert outcome[0] == "error"
    assert outcome == python_outcome(text)


def test_large_profile_lines_match() -> None:
    text = "requests: 10\npaths:\n" + "".join(
        f"  /svc{i}/items: {i % 7 + 1}\n" for i in range(500)
    )

    fast = compose(text)

    assert shape(fast) == shape(yaml.compose(text, Loader=yaml.SafeLoader))


@pytest.mark.parametrize(
    "text",
    ["paths: [/a?x=1]\n", "hosts: {a?: 1}\n", "paths:\n  - /a\n\t\n", "requests:\npaths: [/a]\n"],
)
def test_texts_libyaml_reads_differently(text: str) -> None:
    assert fast_outcome(text) == python_outcome(text)
