"""Who calls the gateway: a token in the path or in ``X-API-Key``, within its limits.

The gateway shares the service's tokens and limits (``app.state.services``) but not
its ``Authorization: Bearer`` header: ComfyUI clients can only be given an address, or, as
Comfy Cloud's clients do, an ``X-API-Key`` header.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import FastAPI, Header, Request

from orchestrator.settings import Settings
from orchestrator.tokens import Principal, TokenStore
from orchestrator.web.errors import Unauthorized
from orchestrator.web.limits import body_bytes

_NO_TOKEN = ("put a token in the address (/comfyui/<token>/) or send 'X-API-Key: <token>'; "
             "an operator makes tokens with 'comfy-orch token create --owner NAME'")
_DEFAULTS = Settings()


def settings_of(app: Any) -> Settings:
    """The service's settings (limits), or the defaults on an app built without them."""
    services = getattr(app.state, "services", None)
    return services.settings if services is not None else _DEFAULTS


@dataclass(frozen=True)
class TokenAuth:
    """Who calls, from a token in the path or in ``X-API-Key``; 401 or 429 otherwise."""

    tokens: TokenStore

    def authenticate(self, app: FastAPI, token: str | None, *, size: int = 0,
                     stream: bool = False) -> Principal:
        """``size``: bytes of the request body; ``stream``: a socket, never refused for
        its rate (see ``Limits.admit``)."""
        if not token:
            raise Unauthorized(_NO_TOKEN)
        who = self.tokens.authenticate(token)
        if who is None:
            raise Unauthorized("the token is unknown or was revoked; ask the operator for a "
                               "new one")
        services = getattr(app.state, "services", None)
        if services is not None:
            services.limiter.admit(who, body_bytes=size, stream=stream)
        return who

    def caller(self, request: Request) -> Principal:
        """``principal`` without dependency solving, for the plain hot routes."""
        return self.authenticate(request.app, request.path_params.get("token")
                                 or request.headers.get("x-api-key"),
                                 size=body_bytes(request.scope))

    async def principal(self, request: Request,
                        x_api_key: Annotated[str | None, Header()] = None) -> Principal:
        """Async: one indexed read, cheaper than a hop to a worker thread (see web.auth)."""
        return self.authenticate(request.app, request.path_params.get("token") or x_api_key,
                                 size=body_bytes(request.scope))
