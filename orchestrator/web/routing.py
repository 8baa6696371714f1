"""Finding a request's route by its first path segment instead of trying every route.

The service answers three faces from one app: ``/v1`` (REST), ``/comfyui`` (the gateway,
each route four times over) and ``/api/v2``: over a hundred routes, which the framework
tries one by one, a regular expression each, on every request. ``RouteIndex`` is one
route that holds them all, grouped by their first literal segment, and tries only the
group a request's path names. Order within a group is kept, so routing is unchanged.

The hot routes of a job's life (submit, its event stream, its output's bytes, on each
face) are also served by a ``FastRoute``: a plain Starlette route placed just before the
documented FastAPI route of the same path and methods, which authenticates once and makes
one call of the façade, with no dependency solving. The documented route stays what the
OpenAPI document describes, and takes any request the fast one does not (``when``), so
unusual requests keep the framework's exact answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import APIRouter
from starlette.datastructures import URLPath
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, NoMatchFound, Route
from starlette.types import Receive, Scope, Send

_CHOSEN = "orchestrator.route"  # scope key: the route ``matches`` picked for ``handle``


def first_segment(path: str) -> str:
    """``/comfyui/{token}/prompt`` → ``comfyui``; a leading parameter is its own group."""
    return path.lstrip("/").split("/", 1)[0]


class RouteIndex(BaseRoute):
    """Routes grouped by first path segment; matches and handles as the chosen one."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self.routes = list(routes)
        self._groups: dict[str, list[BaseRoute]] = {}
        for route in self.routes:
            segment = first_segment(str(getattr(route, "path", "")))
            if segment.startswith("{"):
                raise ValueError(f"route {getattr(route, 'path', route)!r} starts with a "
                                 "parameter; the index needs a literal first segment")
            self._groups.setdefault(segment, []).append(route)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        partial: Scope | None = None
        for route in self._groups.get(first_segment(path), ()):
            match, child = route.matches(scope)
            if match == Match.FULL:
                return match, {**child, _CHOSEN: route}
            if match == Match.PARTIAL and partial is None:
                partial = {**child, _CHOSEN: route}
        if partial is not None:
            return Match.PARTIAL, partial
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: BaseRoute = scope[_CHOSEN]
        await route.handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        for route in self.routes:
            try:
                return route.url_path_for(name, **path_params)
            except NoMatchFound:
                continue
        raise NoMatchFound(name, path_params)


Endpoint = Callable[[Request], Awaitable[Response]]


def always(scope: Scope) -> bool:
    return True


def no_query(scope: Scope) -> bool:
    """A request without a query string: the fast route has no query parameter to check."""
    return not scope.get("query_string")


class FastRoute(Route):
    """A plain route answering ``path`` and ``methods`` ahead of a documented one.

    ``when(scope)`` says whether this request is the fast route's; any other goes to the
    documented route (``fallback``, set by ``with_fast_routes``). Errors raised by the
    endpoint reach the app's handlers as from any route.
    """

    def __init__(self, path: str, endpoint: Endpoint, *, methods: Sequence[str],
                 when: Callable[[Scope], bool] = always) -> None:
        super().__init__(path, endpoint, methods=list(methods), include_in_schema=False)
        self.methods: set[str] = {m.upper() for m in methods}  # as FastAPI's: no HEAD added
        self.when = when
        self.fallback: BaseRoute | None = None

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.fallback is not None and not (scope["method"] in self.methods
                                              and self.when(scope)):
            await self.fallback.handle(scope, receive, send)
            return
        await super().handle(scope, receive, send)


class FastRouter(APIRouter):
    """An ``APIRouter`` that also carries the fast routes of some of its routes."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fast: list[FastRoute] = []


def with_fast_routes(routes: Sequence[BaseRoute], fast: Sequence[FastRoute]
                     ) -> list[BaseRoute]:
    """``routes`` with each fast route just before the route of the same path and
    methods, which becomes its fallback; ``ValueError`` for a fast route with none."""
    ahead: dict[tuple[str, frozenset[str]], FastRoute] = {
        (f.path, frozenset(f.methods or ())): f for f in fast}
    served: list[BaseRoute] = []
    for route in routes:
        methods = getattr(route, "methods", None)
        found = ahead.pop((str(getattr(route, "path", "")), frozenset(methods or ())), None)
        if found is not None:
            found.fallback = route
            served.append(found)
        served.append(route)
    if ahead:
        raise ValueError(f"fast routes without a documented route: {sorted(ahead)}")
    return served
