"""Every route asks who you are, except an explicit few.

Walks the application's routes as FastAPI resolves them and calls each one without a
token or cookie: a JSON route must answer 401, a page must send the visitor to /login.
A route added later without authentication fails here until it is allow-listed.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from fastapi.routing import iter_route_contexts

from api.app import create_app
from settings.config import Settings

# Public on purpose: logging in, the health and readiness probes for load balancers, the
# Prometheus scrape (counts only, no batch data: docs/operations.md), static assets and
# the API's own documentation. Logging out of the pages only drops the cookie.
PUBLIC = {
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("POST", "/api/v1/auth/login"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
}
PUBLIC_MOUNTS = {"/static"}


def _routes(app) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    found = []
    for context in iter_route_contexts(app.routes):
        for method in sorted(context.methods or ()):
            if method != "HEAD":
                found.append((method, context.path))
    return found


def _concrete(path: str) -> str:
    # Any value will do: authentication is decided before the path is looked up.
    return re.sub(r"\{[^}]+\}", "x", path)


@pytest.fixture
async def http(tmp_path: Path):  # type: ignore[no-untyped-def]
    app = create_app(Settings(var_dir=tmp_path, env="test", _env_file=None))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield app, client


async def test_every_route_outside_the_allow_list_needs_authentication(http):
    app, client = http
    routes = _routes(app)
    assert ("GET", "/api/v1/batches") in routes and ("GET", "/operate/{batch_id}") in routes
    open_routes = []
    for method, path in routes:
        if (method, path) in PUBLIC:
            continue
        r = await client.request(method, _concrete(path))
        to_login = r.status_code == 303 and r.headers["location"].startswith("/login")
        if not (r.status_code == 401 or to_login):
            open_routes.append(f"{method} {path} -> {r.status_code}")
    assert open_routes == [], "routes without authentication:\n" + "\n".join(open_routes)


async def test_the_allow_list_names_only_routes_that_exist(http):
    app, _ = http
    routes = set(_routes(app))
    assert routes >= PUBLIC, f"stale allow-list entries: {PUBLIC - routes}"
    mounts = {c.path for c in iter_route_contexts(app.routes) if c.methods is None}
    assert mounts == PUBLIC_MOUNTS, f"unexpected mounts (not routes, never checked): {mounts}"


async def test_a_forged_or_expired_token_is_refused_like_no_token(http):
    _, client = http
    for headers in [{"Authorization": "Bearer not-a-token"}, {"Cookie": "ebr_session=junk"}]:
        r = await client.get("/api/v1/batches", headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "not_authenticated"
