"""Administrator pages over HTTP: users (create, roles, password, unlock, deactivate) through
the users API's own functions, and the equipment register, read-only."""

from __future__ import annotations

from runtime.seed import demo_user
from tests.ui.rig import HOSTILE, Site

NEW_PW = "Initial-pw-2026-abc!"


class TestUsers:
    async def test_the_admin_creates_a_user_who_must_change_the_password(self, site: Site):
        await site.login("admin")
        page = await site.http.get("/admin/users")
        assert page.status_code == 200 and 'href="/admin/users/operator"' in page.text
        r = await site.http.post("/admin/users", data={
            "username": "nina", "full_name": "Nina New", "roles": ["operator", "qa"],
            "password": NEW_PW, "reason": "New starter"})
        assert r.status_code == 200, r.text
        assert "Created nina: they must change the password" in r.text
        nina = site.svc.users.get("nina")
        assert nina is not None and nina.role_list == ["operator", "qa"]
        assert nina.must_change_password

    async def test_a_bad_user_id_or_weak_password_is_refused_and_the_form_kept(self, site: Site):
        await site.login("admin")
        r = await site.http.post("/admin/users", data={
            "username": "Bad Name", "full_name": "B", "roles": ["qa"], "password": NEW_PW})
        assert r.status_code == 422 and "lower-case letters" in r.text
        assert 'value="Bad Name"' in r.text
        r = await site.http.post("/admin/users", data={
            "username": "weak", "full_name": "W", "roles": ["qa"], "password": "short"})
        assert r.status_code == 422 and "Refused:" in r.text
        assert site.svc.users.get("weak") is None

    async def test_roles_password_unlock_and_deactivation_need_a_reason(self, site: Site):
        await site.login("admin")
        site.add_user("rita", "Rita Roles", ["operator"], "Rita-own-pw-2026!")
        r = await site.http.post("/admin/users/rita/roles", data={"roles": ["operator"],
                                                                  "reason": ""})
        assert r.status_code == 422 and "a reason is required" in r.text
        r = await site.http.post("/admin/users/rita/roles", data={
            "roles": ["operator", "supervisor"], "reason": HOSTILE})
        assert r.status_code == 200 and "Roles of rita are now: operator, supervisor." in r.text
        assert site.svc.users.get("rita").role_list == ["operator", "supervisor"]
        r = await site.http.post("/admin/users/rita/password", data={
            "password": NEW_PW, "reason": "Forgot it"})
        assert r.status_code == 200 and "Password of rita reset" in r.text
        assert site.svc.users.get("rita").must_change_password
        # Five wrong passwords lock the account; the admin unlocks it.
        for _ in range(6):
            await site.http.post("/login", data={"username": "rita", "password": "nope"})
        await site.login("admin")
        page = await site.http.get("/admin/users/rita")
        assert "locked until" in page.text and "Unlock" in page.text
        r = await site.http.post("/admin/users/rita/unlock", data={"reason": "Called the desk"})
        assert r.status_code == 200 and "rita is unlocked." in r.text
        assert site.svc.users.get("rita").locked_until is None
        r = await site.http.post("/admin/users/rita/deactivate", data={"reason": "Left"})
        assert r.status_code == 200 and "rita is deactivated" in r.text
        assert not site.svc.users.get("rita").active
        assert "This account is deactivated" in r.text

    async def test_an_admin_cannot_deactivate_themself_and_unknown_users_are_404(self, site):
        await site.login("admin")
        r = await site.http.post("/admin/users/admin/deactivate", data={"reason": "oops"})
        assert "Refused:" in r.text
        assert site.svc.users.get("admin").active
        r = await site.http.get("/admin/users/nobody-here")
        assert r.status_code == 404 and "There is no user nobody-here." in r.text

    async def test_no_one_but_the_admin_reaches_the_user_pages(self, site: Site):
        for role in ("operator", "qa", "auditor"):
            await site.login(role)
            assert (await site.http.get("/admin/users")).status_code == 403
            r = await site.http.post("/admin/users/operator/deactivate", data={"reason": "x"})
            assert r.status_code == 403
        assert site.svc.users.get(demo_user("operator").username).active


class TestEquipment:
    async def test_the_register_is_shown_read_only_with_fitness_for_use(self, site: Site):
        await site.login("admin")
        r = await site.http.get("/admin/equipment")
        assert r.status_code == 200
        assert "Read-only" in r.text and "SCALE-01" in r.text and "MIXER-01" in r.text
        assert "Fit for use today" in r.text
        assert "<form" not in r.text.split("<main")[1]  # nothing to change here
