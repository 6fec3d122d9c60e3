"""The pages over HTTP, without a browser: what each role sees, what the forms do.

A real local Temporal server and worker with fake instruments, as in tests/api; the
pages call the API's route functions, so refusals arrive with the API's messages.
"""

from __future__ import annotations

import re
from dataclasses import replace

from sqlmodel import Session, select

from api.pages_common import safe_next
from api.pages_operate import check_entry
from recipes.plan import Limits, MaterialCharge, PlanStep
from runtime.seed import demo_user
from store.models import SessionToken
from tests.sample_plan import PLAN, PLAN_VERIFIED
from tests.ui.rig import HOSTILE, HX, Rig
from workflows.batch import BatchWorkflow
from workflows.messages import BatchInput

# Typed entries without instruments: an assay with alert limits, text, yes/no, and a
# supervisor's sign-off.
PLAN_TYPED = replace(PLAN, equipment=[], steps=[
    PlanStep("q/a/assay", "check", "Assay", "Enter the assay.", "q", "a",
             limits=Limits("95", "102", "percent"),
             alert_limits=Limits("98", "101.5", "percent"), value_label="Assay"),
    PlanStep("c/c/appearance", "check", "Appearance", "Describe it.", "c", "c",
             value_type="text"),
    PlanStep("c/c/sieved", "check", "Sieved", "Was it sieved?", "c", "c",
             value_type="boolean"),
    PlanStep("p/r/clearance", "signoff", "Line clearance", "Approve the clearance.", "p", "r",
             perform_role="supervisor", sign_meaning="approved"),
], flow=None)
# A pick: the operator scans the container's GS1 label, the WMS checks it, signing issues it.
PLAN_PICK = replace(PLAN, equipment=[], steps=[
    PlanStep("d/p/pick-asc", "pick", "Pick ascorbic acid", "Pick and scan.", "d", "p",
             material=MaterialCharge("RM-ASC", "Ascorbic acid", "0.500", "kg", "0.495",
                                     "0.505")),
], flow=None)

SECOND = ("oscar", "Oscar Second-Operator", "Second-operator-pw-2026!")




class TestLogin:
    async def test_a_page_sends_an_anonymous_visitor_to_login_and_back_after_it(self, rig):
        r = await rig.http.get("/operate/B-1")
        assert r.status_code == 303
        assert r.headers["location"] == "/login?next=%2Foperate%2FB-1"
        user = demo_user("operator")
        r = await rig.http.post("/login", data={"username": user.username,
                                                "password": user.password,
                                                "next": "/operate/B-1"})
        assert r.status_code == 303 and r.headers["location"] == "/operate/B-1"

    async def test_each_role_lands_on_its_own_page(self, rig):
        for role, start in [("operator", "/operate"), ("qa", "/review"),
                            ("auditor", "/audit-view"), ("author", "/recipes"),
                            ("approver", "/recipes"), ("admin", "/admin/users"),
                            ("supervisor", "/batches")]:
            user = demo_user(role)
            r = await rig.http.post("/login", data={"username": user.username,
                                                    "password": user.password})
            assert r.headers["location"] == start, role

    def test_after_login_only_same_site_paths_are_followed(self):
        assert safe_next("/review/B-1") == "/review/B-1"
        for outside in ["//evil.example/x", "https://evil.example", "/\\evil.example", "", None]:
            assert safe_next(outside) == "/"

    async def test_a_role_without_the_page_is_told_which_roles_it_needs(self, rig):
        r = await rig.http.get("/review", cookies=await rig.page_login("operator"))
        assert r.status_code == 403, r.text
        assert "needs one of the roles: qa" in r.text, r.text


class TestTablet:
    async def test_the_step_shows_target_range_and_the_scale_reading_with_its_verdict(self, rig):
        await rig.start("T-WEIGH")
        op = await rig.page_login("operator")
        page = await rig.http.get("/operate/T-WEIGH", cookies=op)
        assert page.status_code == 200
        assert "1200.00 g" in page.text and "1188.00 \u2013 1212.00 g" in page.text
        assert "Read scale" in page.text and 'src="/static/vendor/htmx.min.js"' in page.text
        step = re.search(r'data-step-id="([^"]+)"', page.text).group(1)
        rig.load_scale(step)
        r = await rig.http.post("/operate/T-WEIGH/weigh", headers=HX, cookies=op,
                                data={"step_id": step, "key": "k-1"})
        assert r.status_code == 200
        assert "within tolerance" in r.text and "Read scale again" in r.text
        assert "<html" not in r.text  # htmx gets the panel only

    async def test_a_wrong_password_is_refused_with_the_api_message_and_nothing_signed(self, rig):
        batch = await rig.start("T-PW")
        op = await rig.page_login("operator")
        step = batch["steps"][0]
        rig.load_scale(step)
        await rig.http.post("/operate/T-PW/weigh", headers=HX, cookies=op,
                            data={"step_id": step, "key": "k-w"})
        r = await rig.http.post("/operate/T-PW/complete", headers=HX, cookies=op,
                                data={"step_id": step, "key": "k-c", "username": "operator",
                                      "password": "wrong"})
        assert "Refused:" in r.text and "User id or password is wrong" in r.text
        record = await rig.http.get("/api/v1/batches/T-PW/record", cookies=op)
        assert record.json()["steps"] == []

    async def test_signing_completes_the_step_and_shows_the_next(self, rig):
        batch = await rig.start("T-SIGN")
        op = await rig.page_login("operator")
        first, second = batch["steps"][:2]
        rig.load_scale(first)
        await rig.http.post("/operate/T-SIGN/weigh", headers=HX, cookies=op,
                            data={"step_id": first, "key": "k-w"})
        r = await rig.http.post(
            "/operate/T-SIGN/complete", headers=HX, cookies=op,
            data={"step_id": first, "key": "k-c", "username": "operator",
                  "password": demo_user("operator").password})
        assert "Signed by Olivia Operator: Weigh Ascorbic acid recorded as pass." in r.text
        assert f'data-step-id="{second}"' in r.text

    async def test_the_panel_is_not_resent_while_the_batch_is_unchanged(self, rig):
        await rig.start("T-POLL")
        op = await rig.page_login("operator")
        page = await rig.http.get("/operate/T-POLL", cookies=op)
        fingerprint = re.search(r"/panel\?v=([0-9a-f]+)", page.text).group(1)
        same = await rig.http.get(f"/operate/T-POLL/panel?v={fingerprint}", cookies=op)
        assert same.status_code == 204
        stale = await rig.http.get("/operate/T-POLL/panel?v=old", cookies=op)
        assert stale.status_code == 200 and 'id="panel"' in stale.text

    async def test_a_held_batch_says_why_and_offers_no_action(self, rig):
        await rig.start("T-HELD")
        r = await rig.http.post(
            "/api/v1/batches/T-HELD/hold",
            json={"username": "supervisor", "password": demo_user("supervisor").password,
                  "reason": "Scale <SCALE-01> dirty"},
            headers=await rig.token("supervisor"))
        assert r.status_code == 200, r.text
        page = await rig.http.get("/operate/T-HELD", cookies=await rig.page_login("operator"))
        assert "Batch held:</strong> Scale &lt;SCALE-01&gt; dirty." in page.text
        assert "Read scale" not in page.text and "Sign and complete" not in page.text

    async def test_the_operator_holds_the_batch_with_a_signed_reason(self, rig):
        await rig.start("T-STOP")
        op = await rig.page_login("operator")
        page = await rig.http.get("/operate/T-STOP", cookies=op)
        key = re.search(r'name="key" value="([0-9a-f]+)">\s*<div class="field wide-field">\s*'
                        r'<label for="hold-reason"', page.text).group(1)
        form = {"key": key, "reason": "Drum label torn", "username": "operator"}
        r = await rig.http.post("/operate/T-STOP/request-hold", headers=HX, cookies=op,
                                data=form | {"password": "wrong"})
        assert "Refused:" in r.text and "User id or password is wrong" in r.text
        r = await rig.http.post("/operate/T-STOP/request-hold", headers=HX, cookies=op,
                                data=form | {"password": demo_user("operator").password})
        assert "Held by Olivia Operator: Drum label torn" in r.text, r.text
        page = await rig.http.get("/operate/T-STOP", cookies=op)
        assert "Batch held:</strong> Requested by Olivia Operator: Drum label torn." in page.text
        assert "Stop: hold the batch" not in page.text and "Read scale" not in page.text

    def test_entries_are_checked_as_typed_against_action_and_alert_limits(self):
        action = {"low": "0.0", "high": "2.0", "unit": "percent"}
        alert = {"low": "0.5", "high": "1.5", "unit": "percent"}
        assert check_entry("", action)[0] == ""
        assert check_entry("about two", action) == (
            "bad", "Enter a number such as 1.25 (a dot for decimals, no unit).")
        assert check_entry("NaN", action)[0] == "bad"
        level, text = check_entry("2.5", action, alert)
        assert level == "action" and text.startswith("Outside the action limits 0.0 to 2.0")
        level, text = check_entry("1.8", action, alert)
        assert level == "alert" and "alert limits 0.5 to 1.5 percent" in text
        assert check_entry(" 1.0 ", action, alert) == (
            "ok", "Within the limits 0.0 to 2.0 percent.")
        assert check_entry("7", None, None) == ("ok", "A number: it can be signed.")
        assert check_entry("7.5", None, None, "integer") == (
            "bad", "Enter a whole number such as 12.")
        assert check_entry("7", None, None, "integer")[0] == "ok"

    async def test_the_entry_check_answers_as_typed_with_the_step_limits(self, rig):
        batch = await rig.start("T-ENTRY")
        op = await rig.page_login("operator")
        lod = next(s for s in batch["steps"] if "loss-on-drying" in s)
        r = await rig.http.post("/operate/T-ENTRY/check", headers=HX, cookies=op,
                                data={"step_id": lod, "value": "2.5"})
        assert 'class="check-action"' in r.text and "0.0 to 2.0 percent" in r.text
        r = await rig.http.post("/operate/T-ENTRY/check", headers=HX, cookies=op,
                                data={"step_id": lod, "value": "1.0"})
        assert 'class="check-ok"' in r.text

    async def test_a_scanned_label_is_verified_by_the_wms_and_a_wrong_one_refused(self, rig):
        batch = await rig.start("T-SCAN")
        op = await rig.page_login("operator")
        page = await rig.http.get("/operate/T-SCAN", cookies=op)
        assert "Scan the label of Ascorbic acid" in page.text
        step = batch["steps"][0]
        # A handheld scanner types the bracketed element string, then Enter.
        r = await rig.http.post("/operate/T-SCAN/scan", headers=HX, cookies=op, data={
            "step_id": step, "raw": "(01)07601234560013(10)ASC-2601(17)280630"})
        assert r.status_code == 200
        assert "Label verified: RM-ASC lot ASC-2601, expires 2028-06-30, released." in r.text
        # MCC's label at the ascorbic acid step: refused, saying what it is and what to do.
        r = await rig.http.post("/operate/T-SCAN/scan", headers=HX, cookies=op, data={
            "step_id": step, "raw": "(01)07601234560020(10)MCC-2601"})
        assert "Scan refused:" in r.text and "Microcrystalline cellulose" in r.text
        assert "scan Ascorbic acid" in r.text
        # A lot on hold is refused, and so is a damaged label.
        r = await rig.http.post("/operate/T-SCAN/scan", headers=HX, cookies=op, data={
            "step_id": step, "raw": "(01)07601234560013(10)ASC-2603"})
        assert "Scan refused:" in r.text and "ASC-2603" in r.text
        r = await rig.http.post("/operate/T-SCAN/scan", headers=HX, cookies=op, data={
            "step_id": step, "raw": "(01)07601234560014(10)ASC-2601"})
        assert "Scan refused:" in r.text and "check digit" in r.text.lower()

    async def test_typed_entries_alert_limits_and_a_supervisor_sign_off_at_the_tablet(
        self, rig
    ):
        rig.svc.records.create_batch("T-TYPED", PLAN_TYPED, {}, "supervisor")
        await rig.svc._client.start_workflow(
            BatchWorkflow.run, BatchInput(batch_id="T-TYPED", plan=PLAN_TYPED, equipment={},
                                          created_by="supervisor"),
            id="T-TYPED", task_queue=rig.queue)
        op = await rig.page_login("operator")
        sign = {"username": "operator", "password": demo_user("operator").password}
        page = await rig.http.get("/operate/T-TYPED", cookies=op)
        assert "action limits" in page.text and "Alert limits" in page.text
        assert "98 \u2013 101.5 percent" in page.text
        r = await rig.http.post("/operate/T-TYPED/check", headers=HX, cookies=op,
                                data={"step_id": "q/a/assay", "value": "101.8"})
        assert 'class="check-alert"' in r.text
        r = await rig.http.post("/operate/T-TYPED/complete", headers=HX, cookies=op,
                                data={"step_id": "q/a/assay", "key": "c-1", "value": "101.8"}
                                | sign)
        assert "recorded as pass" in r.text, r.text
        assert 'class="alert-flag"' in r.text  # the step list flags it for review
        assert 'name="value" required maxlength="64"' in r.text  # a text entry next
        r = await rig.http.post("/operate/T-TYPED/complete", headers=HX, cookies=op,
                                data={"step_id": "c/c/appearance", "key": "c-2",
                                      "value": "White powder"} | sign)
        assert "recorded as pass" in r.text, r.text
        assert 'type="radio" name="value" value="true"' in r.text  # then yes or no
        r = await rig.http.post("/operate/T-TYPED/complete", headers=HX, cookies=op,
                                data={"step_id": "c/c/sieved", "key": "c-3", "value": "true"}
                                | sign)
        assert "recorded as pass" in r.text, r.text
        # The line clearance is the supervisor's, signed as "approved": the operator is
        # refused (the page says what the signature means).
        assert "Signing means: I <strong>approved</strong>" in r.text
        r = await rig.http.post("/operate/T-TYPED/complete", headers=HX, cookies=op,
                                data={"step_id": "p/r/clearance", "key": "c-4"} | sign)
        assert "Refused:" in r.text
        sup = await rig.page_login("supervisor")
        r = await rig.http.post("/operate/T-TYPED/complete", headers=HX, cookies=sup, data={
            "step_id": "p/r/clearance", "key": "c-5", "username": "supervisor",
            "password": demo_user("supervisor").password})
        assert "Signed by Sam Supervisor: Line clearance" in r.text, r.text
        record = (await rig.http.get("/api/v1/batches/T-TYPED/record", cookies=op)).json()
        values = {s["step_id"]: s["values"].get("value") for s in record["steps"]}
        assert values["c/c/appearance"] == "White powder" and values["c/c/sieved"] == "true"

    async def test_a_pick_records_its_scanned_lot_and_signing_issues_it(self, rig):
        rig.svc.records.create_batch("T-PICK", PLAN_PICK, {}, "supervisor")
        await rig.svc._client.start_workflow(
            BatchWorkflow.run, BatchInput(batch_id="T-PICK", plan=PLAN_PICK, equipment={},
                                          created_by="supervisor", inventory=True),
            id="T-PICK", task_queue=rig.queue)
        op = await rig.page_login("operator")
        await rig.awaiting("T-PICK", "scan")
        page = await rig.http.get("/operate/T-PICK", cookies=op)
        assert "Scan the label of Ascorbic acid" in page.text
        assert "0.500 kg" in page.text and "Sign and complete" not in page.text
        key = re.search(r'name="key" value="([0-9a-f]+-scan)"', page.text).group(1)
        wrong = await rig.http.post("/operate/T-PICK/scan", headers=HX, cookies=op, data={
            "step_id": "d/p/pick-asc", "raw": "(01)07601234560020(10)MCC-2601",
            "key": "wrong-" + key})
        assert "Scan refused:" in wrong.text
        r = await rig.http.post("/operate/T-PICK/scan", headers=HX, cookies=op, data={
            "step_id": "d/p/pick-asc", "raw": "(01)07601234560013(10)ASC-2601(17)280630",
            "key": key})
        assert "Picked lot ASC-2601 of RM-ASC: 0.500 kg. Sign to issue it." in r.text, r.text
        assert "Lot ASC-2601" in r.text and "signing issues this lot" in r.text
        await rig.awaiting("T-PICK", "perform")
        r = await rig.http.post("/operate/T-PICK/complete", headers=HX, cookies=op, data={
            "step_id": "d/p/pick-asc", "key": "c-pick", "username": "operator",
            "password": demo_user("operator").password})
        assert "recorded as pass" in r.text, r.text

    async def test_a_second_person_verifies_at_the_tablet_and_their_session_ends(self, rig):
        admin = rig.svc.users.get("admin")
        username, full_name, password = SECOND
        rig.svc.users.create_user(admin, username, full_name, ["operator"], "Tmp-pw-2026-xyz!",
                                   "second person for four-eyes steps")
        rig.svc.users.change_password(username, "Tmp-pw-2026-xyz!", password)
        rig.svc.records.create_batch("T-4EYES", PLAN_VERIFIED,
                                     {"scale": "SCALE-01", "mixer": "MIXER-01"}, "supervisor")
        await rig.svc._client.start_workflow(
            BatchWorkflow.run,
            BatchInput(batch_id="T-4EYES", plan=PLAN_VERIFIED,
                       equipment={"scale": "SCALE-01", "mixer": "MIXER-01"},
                       created_by="supervisor"),
            id="T-4EYES", task_queue=rig.queue,
        )
        op = await rig.page_login("operator")
        sign = {"username": "operator", "password": demo_user("operator").password}
        rig.load_scale("d/w/weigh-a")
        await rig.http.post("/operate/T-4EYES/weigh", headers=HX, cookies=op,
                            data={"step_id": "d/w/weigh-a", "key": "w"})
        for step, extra in [("d/w/weigh-a", {}), ("b/b/mix", {}), ("b/b/lod", {"value": "1.0"})]:
            await rig.awaiting("T-4EYES", "perform")
            r = await rig.http.post("/operate/T-4EYES/complete", headers=HX, cookies=op,
                                    data={"step_id": step, "key": f"c-{step}"} | sign | extra)
            assert "recorded as pass" in r.text, r.text
        await rig.awaiting("T-4EYES", "verify")
        page = await rig.http.get("/operate/T-4EYES", cookies=op)
        assert "Second person: verify" in page.text

        # The performer cannot be their own second person.
        same = await rig.http.post(
            "/operate/T-4EYES/verify", headers=HX, cookies=op,
            data={"step_id": "b/b/lod", "key": "v-1", "verifier": "operator",
                  "verifier_password": sign["password"]})
        assert "Refused:" in same.text

        r = await rig.http.post(
            "/operate/T-4EYES/verify", headers=HX, cookies=op,
            data={"step_id": "b/b/lod", "key": "v-2", "verifier": username,
                  "verifier_password": password})
        assert f"Verified by {full_name}: LOD." in r.text, r.text
        record = (await rig.http.get("/api/v1/batches/T-4EYES/record", cookies=op)).json()
        lod = next(s for s in record["steps"] if s["step_id"] == "b/b/lod")
        assert lod["verification"]["full_name"] == full_name
        with Session(rig.svc.engine) as db:
            tokens = db.exec(select(SessionToken).where(SessionToken.username == username)).all()
        assert tokens and all(t.revoked_at is not None for t in tokens)


class TestReview:
    async def _completed(self, rig: Rig, batch_id: str) -> dict[str, str]:
        batch = await rig.start(batch_id)
        op_api = await rig.token("operator")
        steps = batch["steps"]
        await rig.http.post(f"/api/v1/batches/{batch_id}/steps/{steps[0]}/comments",
                            json={"text": HOSTILE}, headers=op_api)
        sign = {"username": "operator", "password": demo_user("operator").password}
        for step in steps:
            action = await rig.awaiting(batch_id, "weigh" if "weigh" in step else "perform")
            assert action == step
            if "weigh" in step:
                rig.load_scale(step)
                await rig.http.post(f"/api/v1/batches/{batch_id}/steps/{step}/weigh",
                                    headers=op_api)
                await rig.awaiting(batch_id, "perform")
            body = sign | ({"value": "2.5"} if "loss-on-drying" in step else {})
            r = await rig.http.post(f"/api/v1/batches/{batch_id}/steps/{step}/complete",
                                    json=body, headers=op_api)
            assert r.status_code == 200, r.text
        return await rig.page_login("qa")

    async def test_exceptions_come_first_and_link_into_the_record(self, rig):
        qa = await self._completed(rig, "T-REVIEW")
        listing = await rig.http.get("/review", cookies=qa)
        assert 'href="/review/T-REVIEW"' in listing.text
        page = await rig.http.get("/review/T-REVIEW", cookies=qa)
        exceptions = page.text.split('id="exceptions-title"')[1].split('id="decision-title"')[0]
        assert "Excursion" in exceptions
        assert 'href="#step-blending-blend-loss-on-drying"' in exceptions
        assert "value 2.5 percent; limits 0.0 to 2.0 percent" in exceptions
        assert "Comment" in exceptions and 'href="#audit-' in exceptions
        assert 'id="step-blending-blend-loss-on-drying"' in page.text

    async def test_user_text_is_escaped_on_every_page_that_shows_it(self, rig):
        qa = await self._completed(rig, "T-ESCAPE")
        for path in ["/review/T-ESCAPE", "/batches/T-ESCAPE"]:
            page = await rig.http.get(path, cookies=qa)
            assert page.status_code == 200
            assert "<script>alert" not in page.text and "<img src=x" not in page.text, path
            if path.startswith("/review"):
                assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text

    async def test_rejecting_needs_a_reason_and_releasing_signs_as_qa(self, rig):
        qa = await self._completed(rig, "T-DECIDE")
        page = await rig.http.get("/review/T-DECIDE", cookies=qa)
        key = re.search(r'name="key" value="([0-9a-f]+)"', page.text).group(1)
        password = demo_user("qa").password
        r = await rig.http.post("/review/T-DECIDE/decide", cookies=qa, data={
            "decision": "rejected", "username": "qa", "password": password, "key": key,
            "reason": " "})
        assert r.status_code == 422 and "A rejection needs a reason" in r.text
        r = await rig.http.post("/review/T-DECIDE/decide", cookies=qa, data={
            "decision": "released", "username": "qa", "password": "wrong", "key": key})
        assert r.status_code == 409 and "User id or password is wrong" in r.text
        r = await rig.http.post("/review/T-DECIDE/decide", cookies=qa, data={
            "decision": "released", "username": "qa", "password": password, "key": key})
        assert r.status_code == 200 and "Released T-DECIDE, signed by Quinn Quality" in r.text
        record = (await rig.http.get("/api/v1/batches/T-DECIDE/record", cookies=qa)).json()
        assert record["release"]["signature"]["username"] == "qa"


    async def test_a_deviation_comes_first_and_qa_signs_its_disposition(self, rig):
        await rig.start("T-DEV")
        r = await rig.http.post("/api/v1/qms/deviations", headers=await rig.token("operator"),
                                json={"batch_id": "T-DEV", "classification": "minor",
                                      "title": "Label torn", "description": "Drum 2 label torn."})
        assert r.status_code == 201, r.text
        deviation_id = r.json()["deviation_id"]
        qa = await rig.page_login("qa")
        page = await rig.http.get("/review/T-DEV", cookies=qa)
        exceptions = page.text.split('id="exceptions-title"')[1].split("</section>")[0]
        assert f'href="#dev-{deviation_id}"' in exceptions.split("</li>")[0]
        key = re.search(r'name="key" value="([0-9a-f]+-1)"', page.text).group(1)
        form = {"disposition": "accept", "rationale": "Relabelled from the batch record.",
                "key": key}
        wrong = await rig.http.post(f"/review/T-DEV/deviations/{deviation_id}", cookies=qa,
                                    data=form | {"username": "qa", "password": "wrong"})
        assert wrong.status_code == 409 and "User id or password is wrong" in wrong.text
        r = await rig.http.post(f"/review/T-DEV/deviations/{deviation_id}", cookies=qa,
                                data=form | {"username": "qa",
                                             "password": demo_user("qa").password})
        assert r.status_code == 200, r.text
        assert f"Deviation {deviation_id}: accept, signed by Quinn Quality." in r.text
        assert "Accept</strong> by qa" in r.text


class TestAuditView:
    async def test_search_finds_batches_by_id_product_or_person(self, rig):
        await rig.start("T-FIND-1")
        auditor = await rig.page_login("auditor")
        hit = await rig.http.get("/audit-view?q=find-1", cookies=auditor)
        assert 'href="/batches/T-FIND-1"' in hit.text
        miss = await rig.http.get("/audit-view?q=nothing-like-it", cookies=auditor)
        assert "No batch matches." in miss.text
        by_person = await rig.http.get("/audit-view?q=supervisor&state=running",
                                       cookies=auditor)
        assert 'href="/batches/T-FIND-1"' in by_person.text

    async def test_an_upload_that_is_not_a_signed_pdf_is_reported_not_verified(self, rig):
        auditor = await rig.page_login("auditor")
        fake = ("fake.pdf", b"%PDF-1.7 not really", "application/pdf")
        r = await rig.http.post("/audit-view/verify", cookies=auditor, files={"file": fake})
        assert "fake.pdf" in r.text
        assert "NOT VERIFIED" in r.text or "Could not verify" in r.text
