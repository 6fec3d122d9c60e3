"""The auditor's audit-trail page over HTTP: filters by batch or object, user, action and
time range; export links carry the same filter; pages of entries; auditors only."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from store import audit
from store.db import transaction
from tests.ui.rig import HOSTILE, Site, make_site


def rows(html: str) -> str:
    return html.split('id="trail"')[1].split("</table>")[0]


class TestAuditTrail:
    async def test_filters_narrow_the_trail_and_exports_carry_the_same_filter(self, site: Site):
        await site.login("auditor")
        everything = await site.http.get("/audit-view/trail")
        assert everything.status_code == 200
        assert "recipe.created" in rows(everything.text) and "user.created" in rows(
            everything.text)
        r = await site.http.get("/audit-view/trail?object=recipe/VC-BLEND@1.0.0")
        body = rows(r.text)
        assert "recipe.created" in body and "recipe.submitted" in body
        assert "user.created" not in body and "recipe/WG" not in body
        r = await site.http.get("/audit-view/trail?action=recipe.&actor=author")
        body = rows(r.text)
        assert "recipe.submitted" in body and "user.created" not in body
        csv_link = r.text.split('id="export-csv" href="')[1].split('"')[0]
        query = parse_qs(urlsplit(csv_link.replace("&amp;", "&")).query)
        assert query == {"format": ["csv"], "actor": ["author"], "action": ["recipe."]}
        export = await site.http.get(csv_link.replace("&amp;", "&"))
        assert export.status_code == 200 and export.text.startswith("id,at,actor")
        assert "recipe.submitted" in export.text and "user.created" not in export.text
        json_link = r.text.split('id="export-json" href="')[1].split('"')[0]
        export = await site.http.get(json_link.replace("&amp;", "&"))
        assert export.status_code == 200 and export.json()["entries"]

    async def test_a_time_range_is_read_in_the_site_time_zone(self, site: Site):
        await site.login("auditor")
        later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
        r = await site.http.get(f"/audit-view/trail?since={later}")
        assert "No entry matches." in r.text
        r = await site.http.get(f"/audit-view/trail?until={later}")
        assert "recipe.created" in rows(r.text)
        r = await site.http.get("/audit-view/trail?since=yesterday")
        assert r.status_code == 422 and "is not a date and time" in r.text

    async def test_batch_and_object_together_are_refused_with_a_reason(self, site: Site):
        await site.login("auditor")
        r = await site.http.get("/audit-view/trail?batch=B-1&object=recipe/x")
        assert r.status_code == 422 and "not both at once" in r.text

    async def test_user_text_in_filters_and_entries_is_escaped(self, site: Site):
        await site.login("admin")
        await site.http.post("/admin/users", data={
            "username": "eve", "full_name": HOSTILE, "roles": ["qa"],
            "password": "Initial-pw-2026-abc!", "reason": HOSTILE})
        await site.login("auditor")
        r = await site.http.get("/audit-view/trail", params={"actor": HOSTILE})
        assert "<script>alert" not in r.text and "&lt;script&gt;" in r.text
        r = await site.http.get("/audit-view/trail?action=user.created")
        assert "eve" in rows(r.text)
        assert "<script>alert" not in r.text and "<img src=x" not in r.text

    async def test_the_trail_pages_through_long_results(self, site: Site):
        with transaction(site.svc.engine) as session:
            for n in range(130):
                audit.append(session, key=f"test/filler/{n}", actor="seed",
                             action="test.filler", subject=f"filler/{n}", detail={"n": n})
        await site.login("auditor")
        r = await site.http.get("/audit-view/trail?action=test.filler")
        assert rows(r.text).count("<tr><td>") == 100 and "Next 100 entries" in r.text
        next_url = r.text.split('class="button" href="')[1].split('"')[0].replace("&amp;", "&")
        assert "action=test.filler" in next_url
        more = await site.http.get(next_url)
        assert rows(more.text).count("<tr><td>") == 30 and "Next 100 entries" not in more.text

    async def test_only_auditors_read_the_whole_trail(self, site: Site):
        for role in ("operator", "qa", "admin"):
            await site.login(role)
            r = await site.http.get("/audit-view/trail")
            assert r.status_code == 403 and "needs one of the roles: auditor" in r.text


class TestSiteTime:
    async def test_times_are_shown_and_read_in_the_site_time_zone_with_the_offset(
        self, tmp_path
    ):
        async with make_site(tmp_path, site_timezone="Europe/Berlin") as berlin:
            await berlin.login("auditor")
            r = await berlin.http.get("/audit-view/trail?action=recipe.created")
            assert "From (Europe/Berlin)" in r.text
            # Stored in UTC, shown as Berlin time with its offset (CET or CEST).
            assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CES?T \(UTC\+0[12]:00\)",
                             rows(r.text))
            # A typed time is Berlin time: an hour after now in UTC terms is still past
            # every entry only when read in Berlin's zone (ahead of UTC).
            now_utc = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
            r = await berlin.http.get(f"/audit-view/trail?action=recipe.created&until={now_utc}")
            assert "No entry matches." in r.text
