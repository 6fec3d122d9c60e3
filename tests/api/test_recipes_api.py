"""The recipe API: read a version with its YAML, walk the lifecycle, diff and compile.

No Temporal server is needed: nothing here starts a batch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from api.app import build_services, create_app
from runtime.seed import EXAMPLES, demo_user, seed_demo
from settings.config import Settings

BASE = "/api/v1/recipes/VC-BLEND"
V1 = f"{BASE}/versions/1.0.0"


class Client:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self._tokens: dict[str, dict[str, str]] = {}

    async def as_(self, role: str) -> dict[str, str]:
        if role not in self._tokens:
            user = demo_user(role)
            r = await self.http.post(
                "/api/v1/auth/login", json={"username": user.username, "password": user.password}
            )
            assert r.status_code == 200, r.text
            self._tokens[role] = {"Authorization": f"Bearer {r.json()['access_token']}"}
        return self._tokens[role]

    async def post(self, url: str, role: str, body: dict | None = None) -> httpx.Response:
        return await self.http.post(url, json=body or {}, headers=await self.as_(role))

    async def get(self, url: str, role: str, **params: str) -> httpx.Response:
        return await self.http.get(url, params=params, headers=await self.as_(role))


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Client]:
    settings = Settings(var_dir=tmp_path, env="test", _env_file=None)
    svc = build_services(settings)
    seed_demo(svc.engine)
    transport = httpx.ASGITransport(app=create_app(settings, svc))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield Client(http)


def approve_body() -> dict[str, str]:
    return {"username": "approver", "password": demo_user("approver").password}


async def test_one_version_is_returned_with_its_exact_yaml_and_history(api: Client) -> None:
    r = await api.get(V1, "auditor")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["yaml"] == (EXAMPLES / "vitamin-c-blend.yaml").read_bytes().decode("utf-8")
    assert body["status"] == "in_review" and body["created_by"] == "author"
    assert [h["action"] for h in body["history"]] == ["recipe.created", "recipe.submitted"]


async def test_an_unknown_version_is_404(api: Client) -> None:
    r = await api.get(f"{BASE}/versions/9.9.9", "auditor")
    assert r.status_code == 404
    assert r.json()["error"]["message"].startswith("Recipe VC-BLEND version 9.9.9 does not")


async def test_the_lifecycle_through_the_api(api: Client) -> None:
    assert (await api.post(f"{V1}/submit", "author")).json()["status"] == "in_review"
    r = await api.post(f"{V1}/approve", "approver", approve_body())
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text
    r = await api.post(f"{V1}/effective", "approver")
    assert r.json()["status"] == "effective"
    r = await api.post(f"{V1}/obsolete", "approver", {"reason": "process retired"})
    assert r.json()["status"] == "obsolete"
    history = (await api.get(V1, "qa")).json()["history"]
    assert [h["action"] for h in history] == [
        "recipe.created",
        "recipe.submitted",
        "recipe.approved",
        "recipe.effective",
        "recipe.obsoleted",
    ]
    assert history[-1]["actor"] == "approver" and history[-1]["detail"]["reason"] == (
        "process retired"
    )


async def test_only_an_author_submits_and_only_an_approver_makes_effective(api: Client) -> None:
    assert (await api.post(f"{V1}/submit", "operator")).status_code == 403
    assert (await api.post(f"{V1}/effective", "author")).status_code == 403


async def test_a_wrong_transition_is_409_with_the_allowed_states(api: Client) -> None:
    r = await api.post(f"{V1}/effective", "approver")
    assert r.status_code == 409
    assert "is in_review; it can become effective only from approved" in (
        r.json()["error"]["message"]
    )


async def test_obsolete_needs_a_reason(api: Client) -> None:
    r = await api.post(f"{V1}/obsolete", "approver", {})
    assert r.status_code == 422 and "reason" in r.json()["error"]["message"]


async def test_diff_between_two_versions_lists_semantic_changes(api: Client) -> None:
    text = (EXAMPLES / "vitamin-c-blend.yaml").read_text(encoding="utf-8")
    text = text.replace("version: 1.0.0", "version: 1.1.0").replace(
        "{low: 0.0, high: 2.0, unit: percent}", "{low: 0.0, high: 1.5, unit: percent}"
    )
    r = await api.post("/api/v1/recipes", "author", {"yaml": text, "filename": "vc-1.1.yaml"})
    assert r.status_code == 201, r.text
    r = await api.get(f"{BASE}/diff", "qa", base="1.0.0", other="1.1.0")
    assert r.status_code == 200, r.text
    assert r.json()["changes"] == [
        {"kind": "changed", "subject": "header", "detail": "version '1.0.0' -> '1.1.0'"},
        {
            "kind": "changed",
            "subject": "phase blending/blend/loss-on-drying",
            "detail": "limits {low=0.0, high=2.0, unit='percent'} -> "
            "{low=0.0, high=1.5, unit='percent'}",
        },
    ]


async def test_compile_previews_the_plan_for_a_batch_size(api: Client) -> None:
    r = await api.post(f"{V1}/compile", "author", {"batch_size": "3"})
    assert r.status_code == 200, r.text
    plan = r.json()["plan"]
    assert plan["batch_size"] == "3" and plan["steps"][0]["material"]["target"] == "1800.00"
    assert len(r.json()["plan_sha256"]) == 64


async def test_compile_outside_the_batch_range_is_422_naming_the_range(api: Client) -> None:
    r = await api.post(f"{V1}/compile", "author", {"batch_size": "10"})
    assert r.status_code == 422
    assert "outside the range this recipe allows (1 to 4 kg)" in r.json()["error"]["message"]
