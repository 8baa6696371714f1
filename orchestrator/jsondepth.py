"""How deep a JSON text nests, found before ``json.loads`` sees it (pure).

Python's ``json`` recurses once per level: a file of ``[`` * 100,000 raises
``RecursionError`` (not ``JSONDecodeError``) in the parser, and a value a few hundred
levels deep can still exhaust the stack in whatever walks it next. Workflow and metadata
files are refused past :data:`MAX_DEPTH` with the line and column where it was crossed.
"""

from __future__ import annotations

import re

# Nesting levels a workflow file may use. An API-format graph is 4 deep ({node: {inputs:
# {name: [link]}}}) and metadata about 4; 64 leaves room for any custom node's structured
# input and keeps every later walk far from the recursion limit.
MAX_DEPTH = 64

# A JSON string (its escapes included) or one bracket; strings are skipped whole, in C.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def depth_exceeded(text: str, limit: int = MAX_DEPTH) -> tuple[int, int] | None:
    """The (line, column) of the first bracket nested deeper than ``limit``, or None.

    Text that is not JSON is judged on its brackets alone; ``json.loads`` reports its
    syntax afterwards.
    """
    if text.count("[") + text.count("{") <= limit:
        return None
    depth = 0
    for token in _TOKEN.finditer(text):
        char = token.group()
        if char in "[{":
            depth += 1
            if depth > limit:
                return _line_column(text, token.start())
        elif char in "]}":
            depth -= 1
    return None


def _line_column(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1
