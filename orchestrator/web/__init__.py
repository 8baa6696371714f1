"""The HTTP front end: the REST API under ``/v1`` and the server that runs it."""

from orchestrator.web.app import create_app
from orchestrator.web.server import ServerThread, serve

__all__ = ["ServerThread", "create_app", "serve"]
