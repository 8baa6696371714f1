"""The REST API under ``/v1``: one router made of one module per resource, plus health."""

from __future__ import annotations

from fastapi import APIRouter

from orchestrator.nodes import NodeHealth
from orchestrator.web import jobs, nodes, outputs, workflows
from orchestrator.web.auth import Svc
from orchestrator.web.schemas import ServiceHealth


def router() -> APIRouter:
    """Every ``/v1`` route."""
    api = APIRouter()
    api.add_api_route("/v1/health", health, methods=["GET"], response_model=ServiceHealth,
                      tags=["health"], summary="Whether the service runs (no token needed)")
    for module in (jobs, outputs, workflows, nodes):
        api.include_router(module.router)
    return api


def health(svc: Svc) -> ServiceHealth:
    """Counts only: anyone may ask, so node addresses and owners stay out of it."""
    pool = svc.orch.nodes()
    return ServiceHealth(nodes_up=sum(n.health == NodeHealth.UP for n in pool),
                  nodes_total=len(pool), queued=svc.orch.store.queued_count())
