"""Who is calling, what they may see, and the services every route shares.

Routes declare ``Caller`` (any valid token) or ``Admin`` (an admin token); both pass the
request through the service's ``Limits``. Event streams declare ``Listener``: a valid
token, never refused for its rate (a stream that reconnects mid-job is not new work).
``GET /v1/me`` tells a client which kind it holds, so a front end can
leave out what the token may not do. What a caller may read is decided by the pure
``can_*`` rules: a token sees its own jobs and outputs plus public outputs; an admin sees
everything. Anything else answers exactly like a missing id, so ids of others' data leak
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from orchestrator.errors import JobNotFound
from orchestrator.jobs import Job, Visibility
from orchestrator.outputs import OutputRecord
from orchestrator.service import Orchestrator
from orchestrator.settings import Settings
from orchestrator.tokens import Principal, TokenStore
from orchestrator.web.errors import Forbidden, Unauthorized
from orchestrator.web.limits import Limits, body_bytes
from orchestrator.web.schemas import Me


@dataclass(frozen=True)
class Services:
    """What the app was built with; one per app, kept in ``app.state.services``."""

    orch: Orchestrator
    tokens: TokenStore
    settings: Settings
    limiter: Limits


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


async def listener(
    svc: Annotated[Services, Depends(services)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller of a valid, unrevoked bearer token, for an event stream; else 401."""
    if credentials is None:
        raise Unauthorized("send 'Authorization: Bearer <token>'; an operator makes tokens "
                           "with 'comfy-orch token create --owner NAME'")
    who = svc.tokens.authenticate(credentials.credentials)
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


router = APIRouter(tags=["auth"])


@router.get("/v1/me", response_model=Me, summary="Who the token stands for")
def me(who: Caller, svc: Svc) -> Me:
    """The token's owner, whether it is an admin token, its public id, and the upload
    limits its requests meet, so a client on another machine can refuse what we would."""
    return Me(owner=who.owner, admin=who.admin, token_id=who.token_id,
              max_upload_bytes=svc.settings.max_upload_bytes,
              max_upload_files=svc.settings.max_upload_files)


def listing_owner(who: Principal, asked: str | None) -> str | None:
    """The owner whose jobs a listing shows: any (``asked``, None: all) for an admin; the
    caller's own otherwise, and ``Forbidden`` when another owner is asked for."""
    if who.admin:
        return asked
    if asked is not None and asked != who.owner:
        raise Forbidden("listing another owner's jobs needs an admin token; leave out "
                        "?owner= to list your own")
    return who.owner


def can_read_job(who: Principal, job: Job) -> bool:
    return who.admin or job.spec.owner == who.owner


def can_read_output(who: Principal, record: OutputRecord) -> bool:
    return (who.admin or record.owner == who.owner
            or record.visibility == Visibility.PUBLIC)


def visible_job(orch: Orchestrator, who: Principal, job_id: str) -> Job:
    """The job, if the caller may see it; ``JobNotFound`` otherwise (as for a bad id)."""
    job = orch.get(job_id)
    if not can_read_job(who, job):
        raise JobNotFound(job_id)
    return job


def visible_output(orch: Orchestrator, who: Principal, output_id: str) -> OutputRecord:
    """The output record, if the caller may see it; ``JobNotFound`` otherwise."""
    record = orch.output(output_id)
    if not can_read_output(who, record):
        raise JobNotFound(output_id, what="output")
    return record
