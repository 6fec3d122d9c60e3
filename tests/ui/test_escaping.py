"""No unescaped user text anywhere: markup typed into every free-text field of a batch
(comments, hold/restart reasons, a deviation's title, description and rationale, a
scanned label, search and filter fields) is shown as text on every page that shows it.

Recipe text, user names and admin reasons are covered the same way in
test_pages_authoring.py, test_pages_admin.py and test_pages_audit_trail.py.
"""

from __future__ import annotations

from runtime.seed import demo_user
from tests.ui.rig import HOSTILE, HX, Rig

ESCAPED = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"


def assert_escaped(html: str, where: str, *, shown: bool = True) -> None:
    assert "<script>alert" not in html and "<img src=x" not in html, where
    if shown:
        assert ESCAPED in html, f"{where} does not show the text at all"


async def test_markup_in_every_free_text_field_is_shown_as_text(rig: Rig):
    batch = await rig.start("T-XSS")
    step = batch["steps"][0]
    op_api, sup_api = await rig.token("operator"), await rig.token("supervisor")
    r = await rig.http.post(f"/api/v1/batches/T-XSS/steps/{step}/comments",
                            json={"text": HOSTILE}, headers=op_api)
    assert r.status_code == 200, r.text
    r = await rig.http.post("/api/v1/qms/deviations", headers=op_api, json={
        "batch_id": "T-XSS", "classification": "minor", "title": HOSTILE,
        "description": HOSTILE})
    assert r.status_code == 201, r.text
    deviation_id = r.json()["deviation_id"]
    r = await rig.http.post(f"/api/v1/qms/deviations/{deviation_id}/disposition",
                            headers=await rig.token("qa"), json={
        "disposition": "accept", "rationale": HOSTILE, "username": "qa",
        "password": demo_user("qa").password})
    assert r.status_code == 200, r.text
    for verb in ("hold", "restart"):
        r = await rig.http.post(f"/api/v1/batches/T-XSS/{verb}", headers=sup_api, json={
            "username": "supervisor", "password": demo_user("supervisor").password,
            "reason": HOSTILE})
        assert r.status_code == 200, r.text

    op = await rig.page_login("operator")
    tablet = await rig.http.get("/operate/T-XSS", cookies=op)
    assert_escaped(tablet.text, "the tablet", shown=False)
    scan = await rig.http.post("/operate/T-XSS/scan", headers=HX, cookies=op,
                               data={"step_id": step, "raw": HOSTILE})
    assert "Scan refused:" in scan.text
    assert_escaped(scan.text, "a refused scan", shown=False)

    qa = await rig.page_login("qa")
    review = await rig.http.get("/review/T-XSS", cookies=qa)
    assert_escaped(review.text, "the review page")
    exceptions = review.text.split('id="exceptions-title"')[1].split('id="decision-title"')[0]
    assert exceptions.count(ESCAPED) >= 4, "comment, deviation, hold and restart reasons"
    assert_escaped((await rig.http.get("/batches/T-XSS", cookies=qa)).text, "the record",
                   shown=False)

    auditor = await rig.page_login("auditor")
    trail = await rig.http.get("/audit-view/trail?batch=T-XSS", cookies=auditor)
    assert_escaped(trail.text, "the audit trail")
    search = await rig.http.get("/audit-view", params={"q": HOSTILE}, cookies=auditor)
    assert_escaped(search.text, "the batch search")
