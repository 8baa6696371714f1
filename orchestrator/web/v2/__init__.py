"""Comfy API v2 over the pool: the job API ComfyUI's own SDK (``comfy-sdk``) speaks.

``v2_router(orch, tokens, settings)`` is included by the service's app under
``/api/v2``; see ``routes.py`` for the surface and ``submit.py`` for what a submit checks.
"""

from orchestrator.web.v2.routes import v2_router

__all__ = ["v2_router"]
