"""Areas scope what a user sees: an operator of line A asking for anything of a line B
batch gets 404 — on every batch route of the API and the pages — and lists show only the
batches of their areas. Visibility is decided before anything else (no Temporal needed)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi.routing import iter_route_contexts

from api.app import build_services, create_app
from runtime.seed import demo_user, seed_demo
from settings.config import Settings
from store.models import ALL_AREAS
from tests.sample_plan import PLAN

B = "B-LINE-B"
STEP = "d/w/weigh-a"
SIGN = {"password": "operator-demo-2026"}

# Every route whose path names a batch, with a body that passes validation, so the
# answer is the route's own. A new batch route fails the completeness test until listed.
API_ROUTES: list[tuple[str, str, dict | None]] = [
    ("GET", "/api/v1/batches/{batch_id}", None),
    ("POST", "/api/v1/batches/{batch_id}/steps/{step_id}/weigh", None),
    ("POST", "/api/v1/batches/{batch_id}/steps/{step_id}/complete", SIGN),
    ("POST", "/api/v1/batches/{batch_id}/steps/{step_id}/verify", SIGN),
    ("POST", "/api/v1/batches/{batch_id}/steps/{step_id}/correct",
     SIGN | {"value": "1.0", "reason": "typo"}),
    ("POST", "/api/v1/batches/{batch_id}/steps/{step_id}/comments", {"text": "hello"}),
    ("POST", "/api/v1/batches/{batch_id}/steps/{step_id}/scan",
     {"barcode": "(01)00000000000000(10)LOT"}),
    ("POST", "/api/v1/batches/{batch_id}/request-hold", SIGN | {"reason": "spill"}),
    ("POST", "/api/v1/batches/{batch_id}/deviations/{deviation_id}/disposition",
     SIGN | {"disposition": "accept", "rationale": "fine"}),
    ("POST", "/api/v1/batches/{batch_id}/release", SIGN | {"decision": "released"}),
    ("POST", "/api/v1/batches/{batch_id}/{action}", SIGN | {"reason": "dust"}),
    ("GET", "/api/v1/batches/{batch_id}/record", None),
    ("GET", "/api/v1/batches/{batch_id}/report.pdf", None),
]
FORM = {"step_id": STEP, "key": "k-1", "password": "operator-demo-2026"}
PAGE_ROUTES: list[tuple[str, str, dict | None]] = [
    ("GET", "/batches/{batch_id}", None),
    ("GET", "/operate/{batch_id}", None),
    ("GET", "/operate/{batch_id}/panel", None),
    ("POST", "/operate/{batch_id}/weigh", {"step_id": STEP, "key": "k-1"}),
    ("POST", "/operate/{batch_id}/complete", FORM),
    ("POST", "/operate/{batch_id}/verify",
     {"step_id": STEP, "key": "k-1", "verifier": "nobody", "verifier_password": "x"}),
    ("POST", "/operate/{batch_id}/check", {"step_id": STEP, "value": "1.0"}),
    ("POST", "/operate/{batch_id}/scan", {"step_id": STEP, "raw": "(01)00000000000000"}),
    ("POST", "/operate/{batch_id}/request-hold",
     {"key": "k-1", "password": "operator-demo-2026", "reason": "dust"}),
    ("GET", "/review/{batch_id}", None),
    ("POST", "/review/{batch_id}/decide",
     {"decision": "released", "password": "x", "key": "k-1"}),
    ("POST", "/review/{batch_id}/deviations/{deviation_id}",
     {"disposition": "accept", "rationale": "r", "password": "x", "key": "k-1"}),
    ("GET", "/review/{batch_id}/report-link", None),
]
# Batch-scoped reads outside /batches: deviations, the audit trail, genealogy.
QUERY_ROUTES = [
    ("/api/v1/qms/deviations", {"batch_id": B}),
    ("/api/v1/audit", {"subject": B}),
    ("/api/v1/audit", {"subject": f"{B}/{STEP}"}),
    ("/api/v1/audit/export", {"subject": B}),
    (f"/api/v1/wms/genealogy/backward/{B}", None),
]


def _path(template: str) -> str:
    return (template.replace("{batch_id}", B).replace("{step_id}", STEP)
            .replace("{deviation_id}", "DEV-000001").replace("{action}", "hold"))


class Site:
    def __init__(self, http: httpx.AsyncClient, svc) -> None:  # type: ignore[no-untyped-def]
        self.http, self.svc = http, svc

    async def token(self, username: str, password: str | None = None) -> dict[str, str]:
        r = await self.http.post("/api/v1/auth/login", json={
            "username": username, "password": password or demo_user(username).password})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    async def cookie(self, username: str) -> dict[str, str]:
        r = await self.http.post("/login", data={"username": username,
                                                 "password": demo_user(username).password})
        assert r.status_code == 303, r.text
        return {"Cookie": f"ebr_session={r.cookies['ebr_session']}"}


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    settings = Settings(var_dir=tmp_path, env="test", areas=["line-a", "line-b"],
                        default_area="line-a", _env_file=None)
    svc = build_services(settings)
    seed_demo(svc.engine, area="line-a")
    svc.records.create_batch(B, PLAN, {"scale": "SCALE-01"}, "supervisor", area="line-b")
    svc.records.create_batch("B-LINE-A", PLAN, {"scale": "SCALE-01"}, "supervisor",
                             area="line-a")
    app = create_app(settings, svc)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as http:
        yield Site(http, svc)


def _batch_routes(app) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    found = set()
    for context in iter_route_contexts(app.routes):
        if context.methods and re.search(r"\{batch_id", context.path):
            found |= {(m, context.path.replace(":path", "")) for m in context.methods
                      if m != "HEAD"}
    return found


async def test_every_batch_route_is_in_the_area_table(site):
    app = site.http._transport.app  # type: ignore[attr-defined]
    listed = {(m, p) for m, p, _ in API_ROUTES + PAGE_ROUTES}
    assert _batch_routes(app) == listed


async def test_operator_of_line_a_gets_404_on_every_api_route_of_a_line_b_batch(site):
    op = await site.token("operator")
    answers = {}
    for method, template, body in API_ROUTES:
        r = await site.http.request(method, _path(template), json=body, headers=op)
        answers[f"{method} {template}"] = (r.status_code, r.json()["error"]["message"])
    assert {k: v[0] for k, v in answers.items()} == {k: 404 for k in answers}
    # The same words as for a batch that does not exist: nothing tells it exists elsewhere.
    assert {v[1] for v in answers.values()} == {f"Batch {B} does not exist."}


async def test_operator_of_line_a_gets_404_on_every_page_of_a_line_b_batch(site):
    # QA pages are for QA (an operator gets 403 before any batch is looked up): a QA
    # user granted only line A asks for those.
    r = await site.http.put("/api/v1/users/qa/areas", headers=await site.token("admin"),
                            json={"areas": ["line-a"], "reason": "line A QA only"})
    assert r.status_code == 200
    cookies = {"operator": await site.cookie("operator"), "qa": await site.cookie("qa")}
    for method, template, form in PAGE_ROUTES:
        cookie = cookies["qa" if template.startswith("/review") else "operator"]
        r = await site.http.request(method, _path(template), data=form, headers=cookie)
        assert r.status_code == 404, f"{method} {template} -> {r.status_code}"
        assert B in r.text


async def test_batch_scoped_reads_elsewhere_are_404_too(site):
    # An auditor granted only line A (the demo auditor sees every area).
    admin = await site.token("admin")
    r = await site.http.put("/api/v1/users/auditor/areas", headers=admin,
                            json={"areas": ["line-a"], "reason": "line A audit only"})
    assert r.status_code == 200 and r.json()["areas"] == ["line-a"]
    for role in ("operator", "auditor"):
        headers = await site.token(role)
        for path, params in QUERY_ROUTES:
            if role == "operator" and "/audit" in path:
                continue  # operators do not read the trail at all (403 before areas)
            r = await site.http.get(path, params=params, headers=headers)
            assert r.status_code == 404, f"{role} {path} {params} -> {r.status_code} {r.text}"


async def test_lists_show_only_the_batches_of_the_users_areas(site):
    op = await site.token("operator")
    r = await site.http.get("/api/v1/batches", headers=op)
    assert [b["batch_id"] for b in r.json()] == ["B-LINE-A"]
    assert r.json()[0]["area"] == "line-a"
    page = await site.http.get("/batches", headers=await site.cookie("operator"))
    assert "B-LINE-A" in page.text and B not in page.text
    qa = await site.token("qa")  # the demo QA holds the all-areas grant
    assert {b["batch_id"] for b in (await site.http.get("/api/v1/batches", headers=qa)).json()} \
        == {"B-LINE-A", B}


async def test_a_user_of_line_b_reads_the_same_routes(site):
    admin = await site.token("admin")
    r = await site.http.post("/api/v1/users", headers=admin, json={
        "username": "bea", "full_name": "Bea Line-B", "roles": ["operator"],
        "areas": ["line-b"], "password": "temporary-pass-1", "reason": "line B operator"})
    assert r.status_code == 201 and r.json()["areas"] == ["line-b"]
    bea = await site.token("bea", "temporary-pass-1")
    r = await site.http.get(f"/api/v1/batches/{B}/record", headers=bea)
    assert r.status_code == 200 and r.json()["batch"]["batch_id"] == B
    r = await site.http.get("/api/v1/batches/B-LINE-A/record", headers=bea)
    assert r.status_code == 404


async def test_the_whole_trail_needs_the_all_areas_grant(site):
    admin = await site.token("admin")
    await site.http.put("/api/v1/users/auditor/areas", headers=admin,
                        json={"areas": ["line-a"], "reason": "line A audit only"})
    auditor = await site.token("auditor")
    r = await site.http.get("/api/v1/audit", headers=auditor)
    assert r.status_code == 403 and "all-areas grant" in r.json()["error"]["message"]
    r = await site.http.get("/api/v1/audit", headers=auditor, params={"subject": "B-LINE-A"})
    assert r.status_code == 200 and r.json()["entries"][0]["action"] == "batch.created"


async def test_area_grants_are_audited_and_unknown_areas_refused(site):
    admin = await site.token("admin")
    r = await site.http.put("/api/v1/users/operator/areas", headers=admin,
                            json={"areas": ["line-c"], "reason": "moved"})
    assert r.status_code == 409 and "line-a, line-b" in r.json()["error"]["message"]
    r = await site.http.put("/api/v1/users/operator/areas", headers=admin,
                            json={"areas": ["line-a", "line-b"], "reason": "covers both lines"})
    assert r.json()["areas"] == ["line-a", "line-b"]
    entries = (await site.http.get("/api/v1/audit", headers=await site.token("auditor"),
                                   params={"action": "user.areas_changed",
                                           "subject": "user/operator"})).json()["entries"]
    assert entries[-1]["detail"] == {"old": "line-a", "new": "line-a,line-b",
                                     "reason": "covers both lines"}
    assert entries[-1]["actor"] == "admin"


async def test_all_areas_grant_is_spelled_star(site):
    assert ALL_AREAS == "*"
    user = site.svc.users.get("qa")
    assert user.area_list == ["*"] and user.sees_area("line-b")


# --- the area a batch runs in -------------------------------------------------------------

REGISTER = """\
ebr_equipment: 1
equipment:
  SCALE-A:
    class: scale
    driver: mt-sics
    connection: {url: "socket://10.1.2.3:4001"}
    serial_number: "0123456789"
    calibration_due: 2099-01-31
    cleaning: {status: clean, cleaned_at: 2026-01-01T00:00:00Z}
    area: line-a
  SCALE-B:
    class: scale
    driver: mt-sics
    connection: {url: "socket://10.1.2.4:4001"}
    serial_number: "0123456780"
    calibration_due: 2099-01-31
    cleaning: {status: clean, cleaned_at: 2026-01-01T00:00:00Z}
    area: line-b
  MIXER-X:
    class: mixer
    driver: modbus-tcp
    connection: {host: 10.1.2.5}
    tag_map: mixer
    cleaning: {status: clean, cleaned_at: 2026-01-01T00:00:00Z}
"""


def test_a_batch_takes_the_area_of_the_equipment_it_is_bound_to():
    from devices.register import parse_register
    from runtime.equipment import EquipmentError, EquipmentRegister

    register = EquipmentRegister(register=parse_register(REGISTER, source="test.yaml"))
    assert register.area_of({"scale": "SCALE-B", "mixer": "MIXER-X"}) == "line-b"
    assert register.area_of({"mixer": "MIXER-X"}) is None  # then the site default
    with pytest.raises(EquipmentError, match="different areas \\(line-a, line-b\\)"):
        register.area_of({"scale": "SCALE-A", "other": "SCALE-B"})


async def test_starting_a_batch_in_an_unknown_or_ungranted_area_is_refused(site):
    approver = await site.token("approver")
    r = await site.http.post("/api/v1/recipes/VC-BLEND/versions/1.0.0/approve",
                             headers=approver, json={"username": "approver",
                                                     "password": demo_user("approver").password})
    assert r.status_code == 200, r.text
    supervisor = await site.token("supervisor")  # granted line A only
    order = {"batch_id": "B-NEW", "recipe_id": "VC-BLEND", "version": "1.0.0"}
    r = await site.http.post("/api/v1/batches", headers=supervisor,
                             json=order | {"area": "line-z"})
    assert r.status_code == 422 and "line-a, line-b" in r.json()["error"]["message"]
    r = await site.http.post("/api/v1/batches", headers=supervisor,
                             json=order | {"area": "line-b"})
    assert r.status_code == 403 and "not granted area line-b" in r.json()["error"]["message"]
    assert site.svc.records.get_batch("B-NEW") is None
