"""A fast route's query parameter is the one parse_qsl (Litestar's plain `str` parameter) gives."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import pytest

from prefill.web.fast import query_value

QUERIES = [
    b"",
    b"t=abc.def.ghi",
    b"t=first&t=last",
    b"x=1&t=&y=2",
    b"t",
    b"&&t=a&&",
    b"t=a+b%20c",
    b"%74=escaped-name",
    b"t%3D=not-t&t=t",
    b"t+=space-after&t=plain",
    b"t=%E2%82%AC&u=1",
    b"t=%zz%4",
    b"t=\xe9t\xe9",
    b"tt=no&at=no",
    b"t=a=b=c",
]


def reference(query: bytes, name: str) -> str | None:
    """What Litestar gives a plain `str` query parameter: parse_qsl's last value of `name`."""
    values = [v for k, v in parse_qsl(query.decode("latin-1"), keep_blank_values=True) if k == name]
    return values[-1] if values else None


@pytest.mark.parametrize("query", QUERIES)
def test_a_query_value_is_parse_qsl_s(query: bytes) -> None:
    for name in ("t", "t ", "x"):
        scope: Any = {"query_string": query}
        assert query_value(scope, name) == reference(query, name)
