"""The one reader of JSON request bodies, for every face (``/v1``, ``/api/v2``, the gateway).

Python's ``json`` takes more than a service should: ``NaN``, ``Infinity`` and ``1e999``
(which become floats no graph, database or client can use), numbers of more than 4,300
digits (``ValueError`` outside ``JSONDecodeError``), and nesting as deep as the C stack
allows, which ends in ``RecursionError`` either in ``json`` itself or in whatever walks
the value next (validation, storage, ``json.dumps``). ``read_json`` refuses all of these at
the door with ``InvalidJson``, a 400 in the error envelope whose message says what is
wrong and where; past it, a value is finite, shallow and encodable.

Usage from any route that reads its own body::

    from orchestrator.web.body import read_json
    data = read_json(await request.body())            # or where="form field 'values'"

Routes whose body FastAPI parses into a model (``body: NodeRequest``) get the same reader
by being made with ``JsonBodyRoute`` (``APIRouter(route_class=JsonBodyRoute)``): their
``InvalidJson`` reaches the app's handlers as itself, not as FastAPI's wordless 400.

A face with its own status for a bad body (v2 answers 422) catches ``InvalidJson`` and
re-raises its own error from it; the message stays the reader's.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from orchestrator.web.errors import InvalidRequest

# Nesting levels a body may use. An API-format graph is 4 deep ({node: {inputs: {name:
# [link]}}}), a gateway /prompt with its UI workflow in extra_pnginfo about 10; 64 leaves
# room for any real client and keeps every later walk far from the recursion limit.
MAX_DEPTH = 64

# A JSON string (escapes included), to be blanked out before brackets are counted.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# Brackets only, braces as brackets: the value parsed, so they pair up and only the
# depth is left to count.
_AS_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# A \u escape of a UTF-16 surrogate: JSON allows a lone one, UTF-8 (and so SQLite,
# every response and every ComfyUI node) does not.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = ("a string holds a lone UTF-16 surrogate (\\uD800-\\uDFFF without its pair); "
              "send valid Unicode")


class InvalidJson(InvalidRequest):
    """A request body (or a JSON form field) that is not JSON the service accepts."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where} is not acceptable JSON: {reason}",
                         details={"field": where, "reason": reason})


class _NonFinite(ValueError):
    def __init__(self, literal: str) -> None:
        super().__init__(literal)
        self.literal = literal


def read_json(raw: bytes | str, *, where: str = "body", max_depth: int = MAX_DEPTH) -> Any:
    """``raw`` parsed as JSON, or ``InvalidJson`` naming ``where`` and the mistake.

    Refused: text that is not UTF-8 JSON, nesting deeper than ``max_depth`` arrays and
    objects, ``NaN``/``Infinity``/``-Infinity`` and numbers that overflow a float, integers
    of more than 4,300 digits, and lone UTF-16 surrogates. Never raises anything else, so
    a caller needs no ``try`` of its own beyond re-wording ``InvalidJson``.
    """
    if isinstance(raw, str) and not _utf8(raw):
        raise InvalidJson(where, _SURROGATE)
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    value = _decode(data, where, max_depth)
    if _deeper_than(data, max_depth):
        raise InvalidJson(where, _too_deep(max_depth))
    if _SURROGATE_ESCAPE.search(data) and not _encodable(value):
        raise InvalidJson(where, _SURROGATE)
    return value


def _too_deep(limit: int) -> str:
    return f"it nests arrays and objects deeper than {limit} levels; flatten it"


def _decode(data: bytes, where: str, max_depth: int) -> Any:
    try:
        return json.loads(data, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NonFinite as exc:
        raise InvalidJson(where, f"{exc.literal} is not a finite number; JSON numbers "
                                 "must be finite") from None
    except RecursionError:
        raise InvalidJson(where, _too_deep(max_depth)) from None
    except json.JSONDecodeError as exc:
        raise InvalidJson(where, f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except UnicodeDecodeError as exc:
        raise InvalidJson(where, f"it is not UTF-8 text (byte {exc.start})") from None
    except ValueError:  # the only other: an integer over Python's digit limit
        raise InvalidJson(where, f"an integer has more than {sys.get_int_max_str_digits():,} "
                                 "digits; send it as a string") from None


def _refuse_constant(literal: str) -> Any:
    raise _NonFinite(literal)


def _finite_float(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):
        raise _NonFinite(literal[:40])
    return number


def _deeper_than(data: bytes, limit: int) -> bool:
    """Whether valid JSON ``data`` nests arrays and objects deeper than ``limit``.

    Counts on the bracket skeleton (strings blanked out), peeling the innermost pairs
    once per level: every step is a C-speed bytes operation, so an 8 MB body costs
    milliseconds whether it is deep or wide, and no Python recursion is involved.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    skeleton = _STRING.sub(b"", data).translate(_AS_BRACKETS, _NOT_BRACKETS)
    for peeled in range(limit):
        if not skeleton:
            return False
        # A run of openers this long is deeper than the levels left: no need to peel on.
        if b"[" * (limit + 1 - peeled) in skeleton:
            return True
        skeleton = skeleton.replace(b"[]", b"")
    return bool(skeleton)


def _encodable(value: Any) -> bool:
    """Whether every string (key or value) in ``value`` encodes as UTF-8; iterative."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not _utf8(item):
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _JsonRequest(Request):
    """A request whose ``json()`` is ``read_json`` (FastAPI parses model bodies with it)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = read_json(await self.body())
        return self._json


class JsonBodyRoute(APIRoute):
    """A route whose JSON body, when FastAPI parses it, goes through ``read_json``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def json_handler(request: Request) -> Response:
            try:
                return await handler(_JsonRequest(request.scope, request.receive))
            except HTTPException as exc:
                # FastAPI words any failure of json() as "There was an error parsing
                # the body"; ours says what and where.
                if isinstance(exc.__cause__, InvalidJson):
                    raise exc.__cause__ from None
                raise

        return json_handler
