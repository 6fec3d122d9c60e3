"""The page tests' rig: the API app in process with a real worker on a real local
Temporal server (tests/app_rig.py), logins per role, and batches started as a supervisor."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import build_services, create_app
from api.services import Services
from runtime.seed import demo_user, seed_demo
from settings.config import Settings
from tests.app_rig import app_with_worker
from tests.logins import bearer
from tests.workflows.fakes import FakeScale

RECIPE = ("VC-BLEND", "1.0.0")
# Markup as anyone could type it into a free-text field: pages must show it as text.
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
HX = {"HX-Request": "true"}


# What the operator puts on the fake scale for each weigh step: its target.
TARGET_G = {"weigh-ascorbic-acid": "1200.00", "weigh-mcc": "800.00", "weigh-a": "1200.00"}


@dataclass
class Rig:
    http: httpx.AsyncClient
    svc: Services
    queue: str
    scale: FakeScale

    def load_scale(self, step_id: str) -> None:
        self.scale.grams = Decimal(TARGET_G[step_id.rsplit("/", 1)[-1]])

    tokens: dict[str, dict[str, str]] = field(default_factory=dict)

    async def token(self, role: str) -> dict[str, str]:
        # One login per role: each costs an argon2 verification (~0.1 s).
        if role not in self.tokens:
            self.tokens[role] = await self._login(role)
        return self.tokens[role]

    async def _login(self, role: str) -> dict[str, str]:
        return await bearer(self.http, role)

    async def page_login(self, role: str) -> dict[str, str]:
        user = demo_user(role)
        r = await self.http.post("/login", data={"username": user.username,
                                                 "password": user.password})
        assert r.status_code == 303, r.text
        return {"ebr_session": r.cookies["ebr_session"]}

    async def start(self, batch_id: str) -> dict[str, Any]:
        r = await self.http.post(
            f"/api/v1/recipes/{RECIPE[0]}/versions/{RECIPE[1]}/approve",
            json={"username": "approver", "password": demo_user("approver").password},
            headers=await self.token("approver"),
        )
        assert r.status_code in (200, 409), r.text  # 409: approved by an earlier test
        r = await self.http.post(
            "/api/v1/batches",
            json={"batch_id": batch_id, "recipe_id": RECIPE[0], "version": RECIPE[1]},
            headers=await self.token("supervisor"),
        )
        assert r.status_code == 201, r.text
        return r.json()

    async def awaiting(self, batch_id: str, action: str) -> str:
        """Wait until the batch awaits `action`; return that step id."""
        headers = await self.token("supervisor")
        for _ in range(200):
            r = await self.http.get(f"/api/v1/batches/{batch_id}", headers=headers)
            for waiting in r.json()["execution"]["awaiting"]:
                if waiting["action"] == action:
                    return waiting["step_id"]
            await asyncio.sleep(0.05)
        raise AssertionError(f"{batch_id} never awaited {action}")


@pytest.fixture
async def rig(temporal_env, tmp_path: Path) -> AsyncIterator[Rig]:  # type: ignore[no-untyped-def]
    async with app_with_worker(temporal_env, tmp_path, "pages") as app:
        yield Rig(app.http, app.services, app.task_queue, app.scale)


@dataclass
class Site:
    """The app without a batch engine: enough for recipe, user and audit pages."""

    http: httpx.AsyncClient
    svc: Services

    async def login(self, username: str, password: str | None = None) -> None:
        """Log the client in through the login page (the cookie stays on the client)."""
        self.http.cookies.clear()
        if password is None:
            user = demo_user(username)
            username, password = user.username, user.password
        r = await self.http.post("/login", data={"username": username, "password": password})
        assert r.status_code == 303, r.text

    def add_user(self, username: str, full_name: str, roles: list[str], password: str) -> None:
        """An account that has already set its own password (as after its first login)."""
        admin = self.svc.users.get("admin")
        assert admin is not None
        self.svc.users.create_user(admin, username, full_name, roles, "Tmp-pw-2026-xyz!",
                                   "test account")
        self.svc.users.change_password(username, "Tmp-pw-2026-xyz!", password)


@asynccontextmanager
async def make_site(var_dir: Path, **settings: Any) -> AsyncIterator[Site]:
    config = Settings(var_dir=var_dir, env="test", _env_file=None, **settings)
    svc = build_services(config)
    seed_demo(svc.engine)
    transport = httpx.ASGITransport(app=create_app(config, svc))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield Site(http, svc)


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with make_site(tmp_path) as made:
        yield made
