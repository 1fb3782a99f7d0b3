"""Routes of the web pages (filled in by the web pages work)."""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
