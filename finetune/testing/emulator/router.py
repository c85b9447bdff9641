"""A tiny regex router: each route has a method, a path pattern and an operation name."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .http import EmuRequest, EmuResponse
    from .service import EmulatorService

Handler = Callable[..., "EmuResponse"]

_NAME = r"(?P<{}>[^/]+)"


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    operation: str
    handler: Handler


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, template: str, operation: str) -> Callable[[Handler], Handler]:
        """``template`` uses ``{name}`` placeholders for one path segment each; matching ignores case."""
        escaped = re.escape(template).replace("\\{", "{").replace("\\}", "}").replace("\\*", "*")
        regex = re.sub(r"\{(\w+)\*\}", lambda m: f"(?P<{m.group(1)}>.+)", escaped)
        regex = re.sub(r"\{(\w+)\}", lambda m: _NAME.format(m.group(1)), regex)
        pattern = re.compile("^" + regex + "/?$", re.IGNORECASE)

        def deco(fn: Handler) -> Handler:
            self.routes.append(Route(method.upper(), pattern, operation, fn))
            return fn

        return deco

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            if route.method != method.upper():
                continue
            m = route.pattern.match(path)
            if m:
                return route, m.groupdict()
        return None

    def path_known(self, path: str) -> bool:
        return any(r.pattern.match(path) for r in self.routes)


def call(route: Route, svc: EmulatorService, req: EmuRequest, params: dict[str, str]) -> EmuResponse:
    return route.handler(svc, req, **params)
