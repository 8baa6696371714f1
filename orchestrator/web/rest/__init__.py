"""The REST API under ``/v1``: one router made of one module per resource, plus who the
token stands for and health.

Each module translates HTTP to a call of the façade (``orchestrator.service``) and its
answer back to the ``/v1`` schemas; who may see or change what, the order a submit is
checked in and the event stream are decided in the core, once for every face.
"""

from __future__ import annotations

from orchestrator.web.auth import Caller, Svc
from orchestrator.web.rest import jobs, nodes, outputs, workflows
from orchestrator.web.routing import FastRouter
from orchestrator.web.schemas import Me, ServiceHealth


def router() -> FastRouter:
    """Every ``/v1`` route, and the hot ones also as plain routes (``api.fast``)."""
    api = FastRouter()
    api.add_api_route("/v1/health", health, methods=["GET"], response_model=ServiceHealth,
                      tags=["health"], summary="Whether the service runs (no token needed)")
    api.add_api_route("/v1/me", me, methods=["GET"], response_model=Me, tags=["auth"],
                      summary="Who the token stands for")
    for module in (jobs, outputs, workflows, nodes):
        api.include_router(module.router)
    api.fast = jobs.fast_routes() + outputs.fast_routes()
    return api


def health(svc: Svc) -> ServiceHealth:
    """Counts only: anyone may ask, so node addresses and owners stay out of it."""
    counts = svc.orch.pool_counts()
    return ServiceHealth(nodes_up=counts.nodes_up, nodes_total=counts.nodes_total,
                         queued=counts.queued, nodes_draining=counts.nodes_draining)


def me(who: Caller, svc: Svc) -> Me:
    """The token's owner, whether it is an admin token, its public id, and the upload
    limits its requests meet, so a client on another machine can refuse what we would."""
    return Me(owner=who.owner, admin=who.admin, token_id=who.token_id,
              max_upload_bytes=svc.settings.max_upload_bytes,
              max_upload_files=svc.settings.max_upload_files)
