"""Who is calling, and the services every route shares.

Routes declare ``Caller`` (any valid token) or ``Admin`` (an admin token); both pass the
request through the service's ``Limits``. Event streams declare ``Listener``: a valid
token, never refused for its rate (a stream that reconnects mid-job is not new work).
What a caller may read or change is the core's one rule (``orchestrator.access``, asked
through the façade's ``*_for`` methods): a token sees its own jobs and outputs plus
public outputs; an admin sees everything; anything else answers exactly like a missing
id, so ids of others' data leak nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from orchestrator.service import Orchestrator, QueueBound
from orchestrator.settings import Settings
from orchestrator.tokens import Principal, TokenStore
from orchestrator.web.errors import Forbidden, Unauthorized
from orchestrator.web.limits import Limits, body_bytes


@dataclass(frozen=True)
class Services:
    """What the app was built with; one per app, kept in ``app.state.services``."""

    orch: Orchestrator
    tokens: TokenStore
    settings: Settings
    limiter: Limits

    def queue_bound(self) -> QueueBound:
        """The queue bound every submit meets (``max_queued``, ``max_queued_per_owner``)."""
        return QueueBound(max_queued=self.settings.max_queued,
                          max_per_owner=self.settings.max_queued_per_owner)


async def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


_bearer = HTTPBearer(auto_error=False, description="a token from `comfy-orch token create`")


async def principal(
    request: Request,
    svc: Annotated[Services, Depends(services)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller of a valid, unrevoked bearer token within its limits; else 401 or 429.

    Async on purpose: the token check is one indexed read of a small table, cheaper than
    the hop to a worker thread a plain ``def`` dependency costs on every request.
    """
    who = await listener(svc, credentials)
    svc.limiter.admit(who, body_bytes=body_bytes(request.scope))
    return who


def caller(request: Request, *, stream: bool = False) -> tuple[Services, Principal]:
    """``principal`` (or, with ``stream``, ``listener``) without dependency solving, for
    the plain hot routes (``routing.FastRoute``): the same checks in the same order, the
    same refusals. The services come along, as the routes need both."""
    svc: Services = request.app.state.services
    who = _authenticated(svc, bearer_token(request.headers.get("authorization")))
    if not stream:
        svc.limiter.admit(who, body_bytes=body_bytes(request.scope))
    return svc, who


def bearer_token(authorization: str | None) -> str | None:
    """The credentials of an ``Authorization: Bearer`` header, read as ``HTTPBearer`` does
    (scheme case-insensitive); None when absent or another scheme."""
    scheme, credentials = get_authorization_scheme_param(authorization)
    if not (authorization and scheme and credentials) or scheme.lower() != "bearer":
        return None
    return credentials


async def listener(
    svc: Annotated[Services, Depends(services)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller of a valid, unrevoked bearer token, for an event stream; else 401."""
    return _authenticated(svc, None if credentials is None else credentials.credentials)


def _authenticated(svc: Services, token: str | None) -> Principal:
    if token is None:
        raise Unauthorized("send 'Authorization: Bearer <token>'; an operator makes tokens "
                           "with 'comfy-orch token create --owner NAME'")
    who = svc.tokens.authenticate(token)
    if who is None:
        raise Unauthorized("the token is unknown or was revoked; ask the operator for a new "
                           "one")
    return who


async def admin(who: Annotated[Principal, Depends(principal)]) -> Principal:
    """The caller, if their token is an admin token; else 403."""
    if not who.admin:
        raise Forbidden("this route changes the service and needs an admin token")
    return who


Svc = Annotated[Services, Depends(services)]
Caller = Annotated[Principal, Depends(principal)]
Listener = Annotated[Principal, Depends(listener)]
Admin = Annotated[Principal, Depends(admin)]
