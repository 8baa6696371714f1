"""What the service writes to its log: uvicorn's lines and ours, never a token's secret.

uvicorn logs each websocket and (with access logs on) each request with its full path,
and the gateway's paths carry the caller's token (``/comfyui/<token>/ws``). A filter on
every handler the service configures rewrites each record through ``tokens.redact`` before
any formatter sees it, so a line that names a token names only its public id.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

from uvicorn.config import LOGGING_CONFIG

from orchestrator.tokens import redact

# uvicorn's access formatter unpacks the arguments of its records by position.
_POSITIONAL_LOGGERS = frozenset({"uvicorn.access"})


def _scrubbed(value: object) -> object:
    return redact(value) if isinstance(value, str) else value


class RedactTokens(logging.Filter):
    """Rewrites a record's message, arguments and traceback text with tokens redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _scrubbed(record.msg)
        if isinstance(record.args, Mapping):
            record.args = {key: _scrubbed(value) for key, value in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(_scrubbed(value) for value in record.args)
        if record.name not in _POSITIONAL_LOGGERS:
            _flatten_if_leaking(record)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _flatten_if_leaking(record: logging.LogRecord) -> None:
    """An argument that is not a string (a tuple, an exception) can still print a token:
    then the record carries its redacted message instead of its arguments."""
    message = record.getMessage()
    clean = redact(message)
    if clean != message:
        record.msg, record.args = clean, None


def log_config(*, own_root: bool) -> dict[str, Any]:
    """uvicorn's logging configuration with ``RedactTokens`` on each of its handlers.

    ``own_root`` (the ``serve`` process owns its logging) also routes every other logger,
    ours included, to the same filtered handler: warnings and errors from anyone, and the
    orchestrator's own info lines. A server on a thread of another program (tests, ``up``)
    leaves that program's root logger alone.
    """
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact_tokens": {"()": RedactTokens}}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact_tokens"]
    if own_root:
        config["root"] = {"handlers": ["default"], "level": "WARNING"}
        config["loggers"]["orchestrator"] = {"level": "INFO"}
    return config
