"""ETags, conditional requests and byte ranges, parsed without a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.web import content
from orchestrator.web.errors import RangeNotSatisfiable

SHA = "ab" * 32


@pytest.mark.parametrize(("header", "expected"), [
    (None, False), ("", False), ("*", True), (f'"{SHA}"', True), (f'W/"{SHA}"', True),
    (f'"other", "{SHA}"', True), ('"other"', False), (SHA, False),
])
def test_if_none_match(header: str | None, expected: bool) -> None:
    assert content.not_modified(header, content.etag_of(SHA)) is expected


def test_variants_have_their_own_etag() -> None:
    assert content.etag_of(SHA, "thumb256") == f'"{SHA}-thumb256"'


@pytest.mark.parametrize(("header", "expected"), [
    (None, None), ("bytes=0-9", (0, 9)), ("bytes=10-", (10, 99)), ("bytes=-10", (90, 99)),
    ("bytes=-500", (0, 99)), ("bytes=90-500", (90, 99)), ("bytes=0-0", (0, 0)),
    ("items=0-9", None), ("bytes=0-9,20-29", None), ("bytes=abc", None), ("bytes=a-b", None),
    ("bytes=5", None),
])
def test_ranges_of_a_hundred_bytes(header: str | None, expected: tuple[int, int] | None) -> None:
    assert content.parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=100-200", "bytes=50-10", "bytes=-0"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable) as caught:
        content.parse_range(header, 100)
    assert caught.value.headers == {"Content-Range": "bytes */100"}


def test_any_range_of_an_empty_file_is_unsatisfiable() -> None:
    with pytest.raises(RangeNotSatisfiable):
        content.parse_range("bytes=-1", 0)


def test_file_chunks_reads_exactly_the_span(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    data = bytes(range(256)) * 1000
    path.write_bytes(data)
    assert b"".join(content.file_chunks(path, 1000, 200_000)) == data[1000:200_001]


@pytest.mark.parametrize(("name", "expected"), [
    ("solid_00001_.png", 'inline; filename="solid_00001_.png"'),
    ('a"b\r\n.png', 'inline; filename="a_b__.png"'),
    ("../../etc/passwd", 'inline; filename="passwd"'),
])
def test_disposition_names_are_safe_in_a_header(name: str, expected: str) -> None:
    assert content.disposition(name) == expected
