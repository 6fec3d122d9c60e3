"""Who may do what: every action against every role, allowed or 403 as the matrix says.

One demo user per role (author, approver, operator, supervisor, qa, auditor, admin), each
signing with their own, correct password, so a refusal is about the role and nothing
else. The app runs with a real worker on a real local Temporal server (tests/app_rig.py).

For each action the roles outside its row are tried first and must get 403; then the
roles in the row must not get 401/403 (the first of them must succeed where the set-up
makes success possible; a later one may meet a state conflict such as 409 "already
held"). Page GETs are part of the matrix: allowed roles get the page, others a 403 page.
Every mismatch is collected, so one run shows the whole difference from the matrix.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime.seed import demo_user
from tests.app_rig import app_with_worker
from tests.sample_plan import PLAN_VERIFIED
from workflows.batch import BatchWorkflow
from workflows.messages import BatchInput

ROLES = ("author", "approver", "operator", "supervisor", "qa", "auditor", "admin")
EVERYONE = frozenset(ROLES)
EXAMPLE = Path(__file__).parents[2] / "recipes" / "examples" / "vitamin-c-blend.yaml"
SECOND_OPERATOR = ("oscar", "Oscar Second-Operator", "Second-operator-pw-2026!")

Call = Callable[["Ctx", str], Awaitable[httpx.Response]]


@dataclass
class Ctx:
    http: httpx.AsyncClient
    rig: Any
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)
    cookies: dict[str, dict[str, str]] = field(default_factory=dict)
    n: int = 0

    def pw(self, role: str) -> str:
        return SECOND_OPERATOR[2] if role == "oscar" else demo_user(role).password

    async def headers(self, role: str) -> dict[str, str]:
        if role not in self.tokens:
            username = SECOND_OPERATOR[0] if role == "oscar" else demo_user(role).username
            r = await self.http.post("/api/v1/auth/login",
                                     json={"username": username, "password": self.pw(role)})
            assert r.status_code == 200, r.text
            self.tokens[role] = {"Authorization": f"Bearer {r.json()['access_token']}"}
        return self.tokens[role]

    async def post(self, role: str, path: str, body: Any = None) -> httpx.Response:
        return await self.http.post(path, json=body or {}, headers=await self.headers(role))

    async def sign(self, role: str, path: str, **extra: Any) -> httpx.Response:
        username = SECOND_OPERATOR[0] if role == "oscar" else demo_user(role).username
        return await self.post(role, path,
                               {"username": username, "password": self.pw(role), **extra})

    async def put(self, role: str, path: str, body: Any) -> httpx.Response:
        return await self.http.put(path, json=body, headers=await self.headers(role))

    async def get(self, role: str, path: str) -> httpx.Response:
        return await self.http.get(path, headers=await self.headers(role))

    async def page(self, role: str, path: str) -> httpx.Response:
        if role not in self.cookies:
            user = demo_user(role)
            r = await self.http.post("/login", data={"username": user.username,
                                                     "password": user.password})
            assert r.status_code == 303, r.text
            self.cookies[role] = {"ebr_session": r.cookies["ebr_session"]}
        self.http.cookies.clear()
        try:
            return await self.http.get(path, cookies=self.cookies[role])
        finally:
            self.http.cookies.clear()

    def fresh(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    async def awaiting(self, batch_id: str, action: str) -> str:
        for _ in range(300):
            r = await self.get("supervisor", f"/api/v1/batches/{batch_id}")
            for waiting in r.json()["execution"]["awaiting"]:
                if waiting["action"] == action:
                    return waiting["step_id"]
            await asyncio.sleep(0.05)
        raise AssertionError(f"{batch_id} never awaited {action}")


@dataclass(frozen=True)
class Action:
    name: str
    allowed: frozenset[str]
    call: Call
    # Must the first allowed role succeed (2xx)? False where the set-up leaves the
    # business state unsuitable on purpose (then only "not 401/403" is required).
    must_succeed: bool = True


def roles(*names: str) -> frozenset[str]:
    return frozenset(names)


async def check(ctx: Ctx, action: Action, problems: list[str]) -> None:
    for role in [r for r in ROLES if r not in action.allowed]:
        r = await action.call(ctx, role)
        if r.status_code != 403:
            problems.append(f"{action.name}: {role} got {r.status_code}, expected 403 "
                            f"({r.text[:160]})")
    for index, role in enumerate(r for r in ROLES if r in action.allowed):
        r = await action.call(ctx, role)
        if r.status_code in (401, 403):
            problems.append(f"{action.name}: {role} got {r.status_code}, expected allowed "
                            f"({r.text[:160]})")
        elif index == 0 and action.must_succeed and not 200 <= r.status_code < 400:
            problems.append(f"{action.name}: {role} got {r.status_code}, expected success "
                            f"({r.text[:160]})")


@pytest.fixture
async def ctx(temporal_env, tmp_path: Path):  # type: ignore[no-untyped-def]
    async with app_with_worker(temporal_env, tmp_path, "matrix") as rig:
        admin = rig.services.users.get("admin")
        username, full_name, password = SECOND_OPERATOR
        rig.services.users.create_user(admin, username, full_name, ["operator"],
                                       "Tmp-pw-2026-xyz!", "second operator")
        rig.services.users.change_password(username, "Tmp-pw-2026-xyz!", password)
        yield Ctx(rig.http, rig)


async def start(ctx: Ctx, batch_id: str) -> dict[str, Any]:
    r = await ctx.sign("approver", "/api/v1/recipes/VC-BLEND/versions/1.0.0/approve")
    assert r.status_code in (200, 409), r.text
    r = await ctx.post("supervisor", "/api/v1/batches",
                       {"batch_id": batch_id, "recipe_id": "VC-BLEND", "version": "1.0.0"})
    assert r.status_code == 201, r.text
    return r.json()


def load_scale(ctx: Ctx, step_id: str) -> None:
    grams = "1200.00" if "ascorbic" in step_id or step_id.endswith("weigh-a") else "800.00"
    ctx.rig.scale.grams = Decimal(grams)


async def complete_batch(ctx: Ctx, batch_id: str) -> None:
    """Every step of the example done by the operator: the batch awaits QA's decision."""
    batch = await start(ctx, batch_id)
    for step in batch["steps"]:
        if "weigh" in step.rsplit("/", 1)[-1]:
            await ctx.awaiting(batch_id, "weigh")
            load_scale(ctx, step)
            r = await ctx.post("operator", f"/api/v1/batches/{batch_id}/steps/{step}/weigh")
            assert r.status_code == 200, r.text
        await ctx.awaiting(batch_id, "perform")
        extra = {"value": "1.0"} if "loss-on-drying" in step else {}
        r = await ctx.sign("operator", f"/api/v1/batches/{batch_id}/steps/{step}/complete",
                           **extra)
        assert r.status_code == 200, r.text


async def test_every_action_is_allowed_or_refused_with_403_as_the_matrix_says(ctx: Ctx):
    problems: list[str] = []

    # --- Batches ----------------------------------------------------------------------
    async def start_batch(c: Ctx, role: str) -> httpx.Response:
        return await c.post(role, "/api/v1/batches", {
            "batch_id": c.fresh("M-START-"), "recipe_id": "VC-BLEND", "version": "1.0.0"})

    await start(ctx, "M-0")  # approves the recipe once
    await check(ctx, Action("start batch", roles("supervisor"), start_batch), problems)

    weigh = (await start(ctx, "M-WEIGH"))["steps"][0]
    load_scale(ctx, weigh)
    await check(ctx, Action("read scale", roles("operator"), lambda c, role: c.post(
        role, f"/api/v1/batches/M-WEIGH/steps/{weigh}/weigh")), problems)
    await ctx.awaiting("M-WEIGH", "perform")
    await check(ctx, Action("complete step", roles("operator"), lambda c, role: c.sign(
        role, f"/api/v1/batches/M-WEIGH/steps/{weigh}/complete")), problems)
    await check(ctx, Action("comment", roles("operator", "supervisor", "qa"),
                            lambda c, role: c.post(
        role, f"/api/v1/batches/M-WEIGH/steps/{weigh}/comments",
        {"text": f"noted by {role}"})), problems)

    await start(ctx, "M-STATE")
    for verb in ("hold", "restart", "abort"):
        await check(ctx, Action(verb, roles("supervisor", "qa"), lambda c, role, verb=verb:
                                c.sign(role, f"/api/v1/batches/M-STATE/{verb}",
                                       reason=f"{verb} by {role}")), problems)

    # Anyone working the batch may stop it: an operator's signed hold request.
    await start(ctx, "M-RHOLD")
    await check(ctx, Action("request hold", roles("operator", "supervisor", "qa"),
                            lambda c, role: c.sign(role, "/api/v1/batches/M-RHOLD/request-hold",
                                                   reason=f"requested by {role}")), problems)

    # Four-eyes: the recipe names the verifier's role (operator); a second operator, not
    # the performer, stands for the operator role here.
    rig = ctx.rig
    equipment = {"scale": "SCALE-01", "mixer": "MIXER-01"}
    rig.services.records.create_batch("M-VERIFY", PLAN_VERIFIED, equipment, "supervisor")
    await rig.services._client.start_workflow(
        BatchWorkflow.run, BatchInput(batch_id="M-VERIFY", plan=PLAN_VERIFIED,
                                      equipment=equipment, created_by="supervisor"),
        id="M-VERIFY", task_queue=rig.task_queue)

    async def verify(c: Ctx, role: str) -> httpx.Response:
        who = "oscar" if role == "operator" else role
        return await c.sign(who, "/api/v1/batches/M-VERIFY/steps/b/b/lod/verify")

    # The LOD step is not performed yet: the operator is allowed, the workflow says "not yet".
    await check(ctx, Action("verify step", roles("operator"), verify, must_succeed=False),
                problems)

    await complete_batch(ctx, "M-DONE")
    lod = "blending/blend/loss-on-drying"
    await check(ctx, Action("correct value", roles("operator", "supervisor"),
                            lambda c, role: c.sign(
        role, f"/api/v1/batches/M-DONE/steps/{lod}/correct", value="1.1",
        reason=f"transcription, {role}"), must_succeed=False), problems)
    await check(ctx, Action("release", roles("qa"), lambda c, role: c.sign(
        role, "/api/v1/batches/M-DONE/release", decision="released")), problems)

    for name, path in [("list batches", "/api/v1/batches"),
                       ("read batch record", "/api/v1/batches/M-DONE/record")]:
        await check(ctx, Action(name, EVERYONE, lambda c, role, path=path: c.get(role, path)),
                    problems)

    # --- Recipes ----------------------------------------------------------------------
    text = EXAMPLE.read_text()

    async def upload(c: Ctx, role: str) -> httpx.Response:
        version = c.fresh("2.0.")
        body = {"yaml": text.replace("version: 1.0.0 ", f"version: {version} ", 1)}
        return await c.post(role, "/api/v1/recipes", body)

    await check(ctx, Action("upload recipe", roles("author"), upload), problems)
    created = [r["version"] for r in (await ctx.get("author", "/api/v1/recipes")).json()
               if r["version"].startswith("2.0.")]
    assert created, "the author's upload is needed for the lifecycle rows"
    v = f"/api/v1/recipes/VC-BLEND/versions/{created[0]}"
    await check(ctx, Action("submit recipe", roles("author"),
                            lambda c, role: c.post(role, f"{v}/submit")), problems)
    await check(ctx, Action("return recipe", roles("approver"), lambda c, role: c.post(
        role, f"{v}/return", {"reason": f"by {role}"})), problems)
    assert (await ctx.post("author", f"{v}/submit")).status_code == 200
    await check(ctx, Action("approve recipe", roles("approver"),
                            lambda c, role: c.sign(role, f"{v}/approve")), problems)
    await check(ctx, Action("make recipe effective", roles("approver"),
                            lambda c, role: c.post(role, f"{v}/effective")), problems)
    await check(ctx, Action("obsolete recipe", roles("approver"), lambda c, role: c.post(
        role, f"{v}/obsolete", {"reason": f"by {role}"})), problems)

    # --- Users ------------------------------------------------------------------------
    async def create_user(c: Ctx, role: str) -> httpx.Response:
        return await c.post(role, "/api/v1/users", {
            "username": c.fresh("user-"), "full_name": "Made In Matrix",
            "roles": ["operator"], "password": "Initial-pw-2026-abc!", "reason": "matrix"})

    await check(ctx, Action("create user", roles("admin"), create_user), problems)
    target = "/api/v1/users/oscar"
    for name, path, body in [
        ("set roles", f"{target}/roles", {"roles": ["operator"], "reason": "matrix"}),
        ("set areas", f"{target}/areas", {"areas": ["main"], "reason": "matrix"}),
        ("reset password", f"{target}/password",
         {"password": "Reset-pw-2026-abc!", "reason": "matrix"}),
        ("unlock user", f"{target}/unlock", {"reason": "matrix"}),
        ("deactivate user", f"{target}/deactivate", {"reason": "matrix"}),
    ]:
        send = ctx.put if name in ("set roles", "set areas") else ctx.post

        async def call(c: Ctx, role: str, path: str = path, body: Any = body,
                       send: Any = send) -> httpx.Response:
            return await send(role, path, body)

        # Unlocking an account that is not locked may be a no-op or a conflict.
        await check(ctx, Action(name, roles("admin"), call,
                                must_succeed=name != "unlock user"), problems)
    await check(ctx, Action("list users", roles("admin"),
                            lambda c, role: c.get(role, "/api/v1/users")), problems)

    # --- Audit trail and reports ----------------------------------------------------------
    for name, path, allowed in [
        ("browse audit trail", "/api/v1/audit", roles("auditor")),
        ("export audit trail", "/api/v1/audit/export?format=json", roles("auditor")),
        ("verify audit chain", "/api/v1/audit/verify", roles("auditor", "qa", "admin")),
    ]:
        await check(ctx, Action(name, allowed, lambda c, role, path=path: c.get(role, path)),
                    problems)

    async def verify_pdf(c: Ctx, role: str) -> httpx.Response:
        return await c.http.post("/api/v1/reports/verify", headers=await c.headers(role),
                                 files={"file": ("x.pdf", b"%PDF-1.7 nothing", "application/pdf")})

    await check(ctx, Action("verify eBMR PDF", roles("auditor", "qa"), verify_pdf,
                            must_succeed=False), problems)

    # --- Warehouse and quality ------------------------------------------------------------
    async def material(c: Ctx, role: str) -> httpx.Response:
        return await c.post(role, "/api/v1/wms/materials", {
            "code": c.fresh("RM-M"), "name": "Matrix material", "unit": "kg"})

    await check(ctx, Action("create material", roles("supervisor", "admin"), material),
                problems)

    async def receive(c: Ctx, role: str) -> httpx.Response:
        return await c.post(role, "/api/v1/wms/receipts", {
            "material_code": "RM-MCC", "lot_number": c.fresh("MCC-M"), "quantity": "5",
            "unit": "kg", "bin_code": "WH-A-01", "expiry": "2030-01-31"})

    await check(ctx, Action("receive material", roles("supervisor", "admin"), receive),
                problems)
    await check(ctx, Action("hold lot", roles("qa"), lambda c, role: c.post(
        role, "/api/v1/wms/lots/MCC-2602/status", {"status": "on_hold", "reason": role})),
        problems)
    await check(ctx, Action("scan label", EVERYONE, lambda c, role: c.post(
        role, "/api/v1/wms/scan/verify",
        {"raw": "(01)07601234560013(10)ASC-2601", "material_code": "RM-ASC"})), problems)

    async def deviation(c: Ctx, role: str) -> httpx.Response:
        return await c.post(role, "/api/v1/qms/deviations", {
            "batch_id": "M-WEIGH", "classification": "minor", "title": f"by {role}",
            "description": "matrix"})

    await check(ctx, Action("open deviation", roles("operator", "supervisor", "qa"), deviation),
                problems)
    opened = (await ctx.get("qa", "/api/v1/qms/deviations?batch_id=M-WEIGH")).json()
    dev = f"/api/v1/qms/deviations/{opened[0]['deviation_id']}"
    await check(ctx, Action("deviation note", roles("supervisor", "qa"), lambda c, role: c.post(
        role, f"{dev}/notes", {"note": f"by {role}"})), problems)
    await check(ctx, Action("deviation disposition", roles("qa"), lambda c, role: c.sign(
        role, f"{dev}/disposition", disposition="accept", rationale="matrix")), problems)

    # --- Pages ------------------------------------------------------------------------
    for path, allowed in [
        ("/batches", EVERYONE),
        ("/operate", roles("operator", "supervisor")),
        ("/operate/M-WEIGH", roles("operator", "supervisor")),
        ("/review", roles("qa")),
        ("/review/M-DONE", roles("qa")),
        ("/audit-view", roles("auditor", "qa")),
        ("/audit-view/trail", roles("auditor")),
        ("/recipes", roles("author", "approver", "qa", "supervisor", "auditor")),
        ("/recipes/new", roles("author")),
        ("/admin/users", roles("admin")),
        ("/admin/equipment", roles("admin")),
    ]:
        await check(ctx, Action(f"page {path}", allowed,
                                lambda c, role, path=path: c.page(role, path)), problems)

    assert problems == [], "differences from the role matrix:\n" + "\n".join(problems)
