"""``/v1/nodes``: the pool's ComfyUI servers with health, capabilities and load; admins add,
remove and drain them while the service runs. ``/v1/object_info``: what the pool's nodes
can run, merged, so a client can offer a node's choices (samplers, schedulers, models)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from orchestrator.nodes import NodeInfo, node_config
from orchestrator.service import Orchestrator
from orchestrator.web.auth import Admin, Caller, Svc
from orchestrator.web.body import JsonBodyRoute
from orchestrator.web.errors import Conflict
from orchestrator.web.schemas import (
    NODE_NAME_RE,
    DrainRequest,
    NodeList,
    NodeOut,
    NodeRequest,
    base_url,
    checked_name,
)

router = APIRouter(tags=["nodes"], route_class=JsonBodyRoute)


def _node(orch: Orchestrator, name: str) -> NodeInfo:
    return orch.node(checked_name(name, "node name", NODE_NAME_RE))


@router.get("/v1/nodes", response_model=NodeList,
            summary="Every node with health, capabilities, load")
def list_nodes(svc: Svc, who: Caller) -> NodeList:
    """Node addresses and last errors are shown to admins only."""
    return NodeList(nodes=[NodeOut.of(n, admin=who.admin) for n in svc.orch.nodes()],
                    queued=svc.orch.queued_count())


@router.post("/v1/nodes", status_code=201, response_model=NodeOut, summary="Add a ComfyUI node")
def add_node(body: NodeRequest, request: Request, response: Response, svc: Svc,
             who: Admin) -> NodeOut:
    """The node is asked for its health and capabilities at once; one that does not answer
    is added as down and used as soon as it answers."""
    name = body.name or node_config(body.url).name  # ConfigError (400) for a bad URL
    checked_name(name, "node name", NODE_NAME_RE)
    if any(n.name == name for n in svc.orch.nodes()):
        raise Conflict(f"a node named {name!r} is already in the pool; remove it first")
    info = svc.orch.add_node(body.url, name=body.name, tags=body.tags,
                             max_in_flight=body.max_in_flight)
    response.headers["Location"] = f"{base_url(request)}/v1/nodes/{info.name}"
    return NodeOut.of(info)


@router.delete("/v1/nodes/{name}", status_code=204,
                summary="Remove a node; its work moves elsewhere")
def remove_node(name: str, svc: Svc, who: Admin) -> Response:
    svc.orch.remove_node(_node(svc.orch, name).name)
    return Response(status_code=204)


@router.post("/v1/nodes/{name}/drain", response_model=NodeOut,
             summary="Stop (or resume) giving a node new work; what runs there finishes")
def drain_node(name: str, body: DrainRequest, svc: Svc, who: Admin) -> NodeOut:
    node = _node(svc.orch, name)
    svc.orch.drain_node(node.name, body.draining)
    return NodeOut.of(_node(svc.orch, name))


@router.get("/v1/object_info", summary="The pool's merged /object_info, or some classes of it")
def object_info(svc: Svc, who: Caller,
                class_: Annotated[list[str] | None, Query(alias="class")] = None
                ) -> dict[str, Any]:
    """Every node class some node of the pool offers, as ComfyUI's ``/object_info`` shows
    it; ``?class=KSampler`` (repeatable) keeps those classes (unknown ones are left out).
    Empty while no node has answered."""
    merged = svc.orch.object_info()
    if class_ is None:
        return merged
    return {name: merged[name] for name in dict.fromkeys(class_) if name in merged}
