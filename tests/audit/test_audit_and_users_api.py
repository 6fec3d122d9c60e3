"""The audit trail, sessions and user administration over HTTP (no Temporal needed)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from api.app import build_services, create_app
from runtime.seed import demo_user, seed_demo
from settings.config import Settings
from tests.databases import disable_audit_guard


class Client:
    def __init__(self, http: httpx.AsyncClient, svc) -> None:  # type: ignore[no-untyped-def]
        self.http, self.svc = http, svc

    async def login(self, username: str, password: str | None = None) -> dict[str, str]:
        password = password or demo_user(username).password
        r = await self.http.post("/api/v1/auth/login",
                                 json={"username": username, "password": password})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Client]:
    settings = Settings(var_dir=tmp_path, env="test", lockout_threshold=3, _env_file=None)
    svc = build_services(settings)
    seed_demo(svc.engine)
    app = create_app(settings, svc)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as http:
        yield Client(http, svc)


def error(r: httpx.Response) -> dict[str, str]:
    assert set(r.json()) == {"error"}, r.text
    return r.json()["error"]


# --- sessions and lockout -----------------------------------------------------


async def test_third_failed_login_locks_with_423_saying_until_when(api):
    for _ in range(2):
        r = await api.http.post("/api/v1/auth/login",
                                json={"username": "operator", "password": "wrong-pass-1"})
        assert r.status_code == 401
    r = await api.http.post("/api/v1/auth/login",
                            json={"username": "operator", "password": "wrong-pass-1"})
    assert r.status_code == 423 and error(r)["code"] == "account_locked"
    assert "locked" in error(r)["message"] and " UTC" in error(r)["message"]
    r = await api.http.post("/api/v1/auth/login", json={
        "username": "operator", "password": demo_user("operator").password})
    assert r.status_code == 423


async def test_logout_makes_the_token_useless(api):
    headers = await api.login("qa")
    assert (await api.http.get("/api/v1/auth/me", headers=headers)).status_code == 200
    assert (await api.http.post("/api/v1/auth/logout", headers=headers)).status_code == 200
    r = await api.http.get("/api/v1/auth/me", headers=headers)
    assert r.status_code == 401 and "logged out" in error(r)["message"]


async def test_password_change_returns_a_new_token_and_revokes_the_old(api):
    old = await api.login("qa")
    r = await api.http.post("/api/v1/auth/password", headers=old, json={
        "current_password": demo_user("qa").password, "new_password": "qa-new-pass-2027"})
    assert r.status_code == 200, r.text
    new = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert (await api.http.get("/api/v1/auth/me", headers=old)).status_code == 401
    assert (await api.http.get("/api/v1/auth/me", headers=new)).status_code == 200


async def test_weak_new_password_is_refused_with_the_rule(api):
    r = await api.http.post("/api/v1/auth/password", headers=await api.login("qa"), json={
        "current_password": demo_user("qa").password, "new_password": "short"})
    assert r.status_code == 422 and "at least 12" in error(r)["message"]


# --- user administration ----------------------------------------------------------


async def test_admin_creates_a_user_who_must_change_the_password(api):
    admin = await api.login("admin")
    r = await api.http.post("/api/v1/users", headers=admin, json={
        "username": "nina", "full_name": "Nina New", "roles": ["operator"],
        "password": "temporary-pass-1", "reason": "new hire"})
    assert r.status_code == 201, r.text
    assert r.json()["must_change_password"] is True
    r = await api.http.post("/api/v1/auth/login",
                            json={"username": "nina", "password": "temporary-pass-1"})
    assert "set by an administrator" in r.json()["password_change_required"]


async def test_a_username_is_never_reused(api):
    admin = await api.login("admin")
    r = await api.http.post("/api/v1/users", headers=admin, json={
        "username": "operator", "full_name": "Another", "roles": ["operator"],
        "password": "temporary-pass-1", "reason": "rehire"})
    assert r.status_code == 409 and "never reused" in error(r)["message"]


async def test_only_admins_administer_users(api):
    r = await api.http.get("/api/v1/users", headers=await api.login("qa"))
    assert r.status_code == 403 and "admin role" in error(r)["message"]


async def test_deactivated_user_is_logged_out_and_cannot_log_in(api):
    victim = await api.login("operator")
    admin = await api.login("admin")
    r = await api.http.post("/api/v1/users/operator/deactivate", headers=admin,
                            json={"reason": "left the company"})
    assert r.status_code == 200 and r.json()["active"] is False
    assert (await api.http.get("/api/v1/auth/me", headers=victim)).status_code == 401
    r = await api.http.post("/api/v1/auth/login", json={
        "username": "operator", "password": demo_user("operator").password})
    assert r.status_code == 401


async def test_role_change_needs_a_reason(api):
    r = await api.http.put("/api/v1/users/operator/roles", headers=await api.login("admin"),
                           json={"roles": ["operator", "qa"]})
    assert r.status_code == 422 and "reason" in error(r)["message"]


async def test_removing_a_role_revokes_the_users_tokens(api):
    headers = await api.login("supervisor")
    r = await api.http.put("/api/v1/users/supervisor/roles", headers=await api.login("admin"),
                           json={"roles": ["operator"], "reason": "moved to the floor"})
    assert r.status_code == 200 and r.json()["roles"] == ["operator"]
    assert (await api.http.get("/api/v1/auth/me", headers=headers)).status_code == 401


# --- the audit trail --------------------------------------------------------------


async def _make_history(api: Client) -> None:
    await api.http.post("/api/v1/auth/login",
                        json={"username": "operator", "password": "wrong-pass-1"})
    await api.http.put("/api/v1/users/operator/roles", headers=await api.login("admin"),
                       json={"roles": ["operator", "supervisor"], "reason": "cover"})


async def test_auditor_filters_by_subject_actor_and_action(api):
    await _make_history(api)
    auditor = await api.login("auditor")
    r = await api.http.get("/api/v1/audit", headers=auditor,
                           params={"subject": "user/operator"})
    actions = [e["action"] for e in r.json()["entries"]]
    assert actions == ["user.created", "auth.failed", "user.roles_changed"]
    r = await api.http.get("/api/v1/audit", headers=auditor,
                           params={"actor": "admin", "action": "user."})
    [entry] = r.json()["entries"]
    assert entry["detail"] == {"old": "operator", "new": "operator,supervisor",
                               "reason": "cover"}
    assert entry["at"].endswith("+00:00")


async def test_time_range_filter_and_pagination(api):
    await _make_history(api)
    auditor = await api.login("auditor")
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    r = await api.http.get("/api/v1/audit", headers=auditor, params={"since": future})
    assert r.json()["entries"] == []
    first = (await api.http.get("/api/v1/audit", headers=auditor, params={"limit": 2})).json()
    assert len(first["entries"]) == 2 and first["next_after_id"] == first["entries"][1]["id"]
    second = (await api.http.get("/api/v1/audit", headers=auditor,
                                 params={"limit": 2, "after_id": first["next_after_id"]})).json()
    assert second["entries"][0]["id"] > first["entries"][1]["id"]


async def test_page_size_is_capped_and_naive_times_refused(api):
    auditor = await api.login("auditor")
    r = await api.http.get("/api/v1/audit", headers=auditor, params={"limit": 501})
    assert r.status_code == 422 and "limit" in error(r)["message"]
    r = await api.http.get("/api/v1/audit", headers=auditor,
                           params={"since": "2026-01-01T00:00:00"})
    assert r.status_code == 422 and "offset" in error(r)["message"]


async def test_only_auditors_read_the_trail(api):
    r = await api.http.get("/api/v1/audit", headers=await api.login("operator"))
    assert r.status_code == 403


async def test_export_as_csv_and_json(api):
    await _make_history(api)
    auditor = await api.login("auditor")
    r = await api.http.get("/api/v1/audit/export", headers=auditor,
                           params={"format": "csv", "subject": "user/operator"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["action"] for row in rows] == ["user.created", "auth.failed",
                                              "user.roles_changed"]
    r = await api.http.get("/api/v1/audit/export", headers=auditor, params={"format": "json"})
    entries = r.json()["entries"]
    assert len(entries) >= 10 and all(e["at"].endswith("+00:00") for e in entries)
    # Both exports are themselves in the trail, with who took them and what they covered.
    exports = [e for e in entries if e["action"] == "audit.exported"]
    assert [(e["actor"], e["detail"]) for e in exports] == [
        ("auditor", {"format": "csv", "subject": "user/operator"}),
        ("auditor", {"format": "json"}),
    ]


async def test_csv_export_neutralises_spreadsheet_formulas(api):
    admin = await api.login("admin")
    await api.http.post("/api/v1/users", headers=admin, json={
        "username": "eve", "full_name": "=HYPERLINK(\"http://x\")", "roles": ["operator"],
        "password": "temporary-pass-1", "reason": "new hire"})
    r = await api.http.get("/api/v1/audit/export", headers=await api.login("auditor"),
                           params={"subject": "user/eve"})
    [row] = list(csv.DictReader(io.StringIO(r.text)))
    assert not row["detail"].startswith("=") and "HYPERLINK" in row["detail"]


async def test_verify_reports_an_intact_chain(api):
    for role in ("auditor", "qa", "admin"):
        r = await api.http.get("/api/v1/audit/verify", headers=await api.login(role))
        assert r.status_code == 200 and r.json()["ok"] is True
    r = await api.http.get("/api/v1/audit/verify", headers=await api.login("operator"))
    assert r.status_code == 403


async def test_verify_names_the_row_an_attacker_edited(api):
    with api.svc.engine.begin() as conn:
        disable_audit_guard(conn)
        conn.exec_driver_sql("UPDATE audit_events SET detail_json = '{}' WHERE id = 3")
    r = await api.http.get("/api/v1/audit/verify", headers=await api.login("auditor"))
    body = r.json()
    assert body["ok"] is False and body["first_bad_id"] == 3
    assert "id=3" in body["message"] and body["entries_verified"] == 2
