"""Request values as a job's JSON shows them back (pure): without the images inside.

SillyTavern sends ``%char_avatar%`` as a base64 PNG in the values, often hundreds of KB.
Echoing it on every ``GET /v1/jobs/{id}`` (a panel polls each running job every second)
costs bandwidth and buries the values a reader wants; the job keeps the full value, and
its output records the image it made.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

ECHO_MAX_CHARS = 1024  # longer base64 text is summarised; no prompt is base64 this long
_BASE64 = re.compile(r"(data:[\w/+.-]+;base64,)?[A-Za-z0-9+/\r\n]+={0,2}\s*")


def echoed(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with each long base64 string (an inline image) replaced by a short note
    of its size; every other value as given."""
    return {name: _echo(value) for name, value in values.items()}


def _echo(value: Any) -> Any:
    if isinstance(value, str) and len(value) > ECHO_MAX_CHARS and _BASE64.fullmatch(value):
        return f"<base64 data, {len(value)} characters, not echoed>"
    return value
