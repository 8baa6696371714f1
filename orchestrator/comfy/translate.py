"""The one place urllib3's, ``http11``'s and websocket-client's exceptions become
``NodeError``s.

The client, the prompt watcher and the shared socket all talk to a node through those
libraries; each wraps its calls in ``translated`` so a caller only ever sees our error
tree, with the node's URL attached.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import urllib3
import websocket

from orchestrator.comfy.http11 import MalformedAnswer, NodeSilent
from orchestrator.errors import NodeError, NodeProtocolError, NodeTimeout, NodeUnreachable


@contextlib.contextmanager
def translated(url: str, what: str) -> Iterator[None]:
    """Map urllib3 / websocket-client failures to NodeError subclasses, once."""
    try:
        yield
    except NodeError:
        raise
    except (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ProtocolError,
            urllib3.exceptions.MaxRetryError, urllib3.exceptions.ProxyError, ConnectionError,
            websocket.WebSocketException) as exc:
        # Before timeouts: urllib3's NewConnectionError is a ConnectTimeoutError subclass.
        raise NodeUnreachable(url, _reason(exc)) from exc
    except (urllib3.exceptions.TimeoutError, NodeSilent) as exc:
        raise NodeTimeout(url, f"{what} timed out") from exc
    except OSError as exc:
        raise NodeUnreachable(url, _reason(exc)) from exc
    except (urllib3.exceptions.HTTPError, MalformedAnswer) as exc:
        raise NodeProtocolError(url, f"{what} failed: {exc}") from exc
    except ValueError as exc:  # bad JSON
        raise NodeProtocolError(url, f"{what} answered something that is not JSON") from exc


def _reason(exc: BaseException) -> str:
    text = str(exc)
    if "refused" in text.lower() or isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, websocket.WebSocketConnectionClosedException):
        return "websocket closed"
    return text.split("(Caused by", 1)[-1].strip(" ()'\"")[:160] or type(exc).__name__
