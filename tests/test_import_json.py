"""An import line read fast (orjson) is read exactly as the standard library reads it,
or handed to it: never a repeated key let through, never another value."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipledger.domain.errors import InvalidInput
from ipledger.ledger.importer import DuplicateKey, _plain_object, _unique_keys, json_object


@dataclass(frozen=True)
class Obj:
    """A JSON object as written: its pairs in order, a key possibly twice."""

    pairs: tuple[tuple[str, Any], ...]


def dump(value: Any, gap: str) -> str:
    if isinstance(value, Obj):
        return "{" + f",{gap}".join(f"{json.dumps(k)}{gap}:{gap}{dump(v, gap)}" for k, v in value.pairs) + "}"
    if isinstance(value, list):
        return "[" + f",{gap}".join(dump(v, gap) for v in value) + "]"
    return json.dumps(value)


TEXT = st.text(alphabet='ab:"{}[], é\\\u2028', max_size=4)  # quotes and backslashes come escaped
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=False), TEXT
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(st.tuples(st.sampled_from(["a", "b", "a:b", ":", ""]) | TEXT, inner), max_size=4).map(
            lambda pairs: Obj(tuple(pairs))
        ),
    ),
    max_leaves=12,
)
OBJECTS = st.lists(st.tuples(st.sampled_from(["a", "b", "args", ":"]), VALUES), max_size=4).map(
    lambda pairs: Obj(tuple(pairs))
)


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (1 == True == 1.0 in Python)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@settings(max_examples=600, deadline=None)
@given(OBJECTS, st.sampled_from(["", " ", "\t"]))
def test_the_fast_reading_is_the_standard_librarys_or_none(value: Obj, gap: str) -> None:
    text = dump(value, gap).encode()
    try:
        expected: Any = json.loads(text, object_pairs_hook=_unique_keys)
    except DuplicateKey:
        expected = DuplicateKey
    fast = _plain_object(text)
    if fast is not None:
        assert expected is not DuplicateKey, text
        assert same(fast, expected), text


@pytest.mark.parametrize(
    "line",
    [
        b'{"command": "member.add", "args": {"id": "byd", "id": "zte"}}',  # repeated inside
        b'{"a": 1, "a": 1}',
        b'{"a": {"b": ":"}, "a": 2}',  # a colon inside a string does not hide the repeat
        b'{"a": 1.5}',  # a float: the standard library's
        b'{"a": "\\u00e9"}',  # an escape
        b"[1, 2]",
    ],
)
def test_what_the_fast_reading_leaves_to_the_standard_library(line: bytes) -> None:
    assert _plain_object(line) is None


def test_a_repeated_key_is_refused_by_name_as_before() -> None:
    with pytest.raises(InvalidInput, match="^id: appears twice in one JSON object"):
        json_object(b'{"args": {"id": "byd", "id": "zte"}}', "an import line", "not an object")


def test_a_plain_line_is_read_fast() -> None:
    line = b'{"command":"member.add","args":{"id":"uni-1","name":"A: B","kind":"university"},"command_id":"c-1"}'
    assert _plain_object(line) == json.loads(line)
