"""Finding a request's route by its first path segment instead of trying every route.

The service answers three faces from one app: ``/v1`` (REST), ``/comfyui`` (the gateway,
each route four times over) and ``/api/v2``: over a hundred routes, which the framework
tries one by one, a regular expression each, on every request. ``RouteIndex`` is one
route that holds them all, grouped by their first literal segment, and tries only the
group a request's path names. Order within a group is kept, so routing is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.datastructures import URLPath
from starlette.routing import BaseRoute, Match, NoMatchFound
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
