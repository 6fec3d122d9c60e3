"""The HTTP API against a real local Temporal server and worker (fake instruments).

Every refusal has one error format with a message a person can act on, and a
refused or retried request records nothing twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from runtime.seed import EXAMPLES, demo_user
from tests.app_rig import app_with_worker
from tests.logins import bearer
from tests.workflows.fakes import FakeScale

RECIPE = ("VC-BLEND", "1.0.0")


def sign(role: str) -> dict[str, str]:
    """A signature's components: user id and password (the user id is needed on a
    session's first signature and accepted on every later one)."""
    return {"username": demo_user(role).username, "password": demo_user(role).password}


class Api:
    def __init__(self, http: httpx.AsyncClient, scale: FakeScale) -> None:
        self.http, self.scale = http, scale

    async def login(self, role: str) -> dict[str, str]:
        return await bearer(self.http, role)

    async def approve_example(self) -> None:
        r = await self.http.post(
            f"/api/v1/recipes/{RECIPE[0]}/versions/{RECIPE[1]}/approve",
            json={"username": "approver", "password": demo_user("approver").password},
            headers=await self.login("approver"),
        )
        assert r.status_code == 200, r.text

    async def start_batch(self, batch_id: str) -> dict:
        r = await self.http.post(
            "/api/v1/batches",
            json={"batch_id": batch_id, "recipe_id": RECIPE[0], "version": RECIPE[1]},
            headers=await self.login("supervisor"),
        )
        assert r.status_code == 201, r.text
        return r.json()

    async def wait_until_running(self, batch_id: str, headers: dict[str, str]) -> dict:
        """The batch's view once its first workflow task is done: a busy machine answers
        503 ("the engine did not answer") until then, and a tablet simply asks again."""
        for _ in range(30):
            r = await self.http.get(f"/api/v1/batches/{batch_id}", headers=headers)
            if r.status_code != 503:
                break
            await asyncio.sleep(2)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
async def api(temporal_env, tmp_path: Path) -> AsyncIterator[Api]:  # type: ignore[no-untyped-def]
    async with app_with_worker(temporal_env, tmp_path, "api") as rig:
        yield Api(rig.http, rig.scale)


def error(r: httpx.Response) -> dict[str, str]:
    body = r.json()
    assert set(body) == {"error"}, body
    return body["error"]


class TestAuthentication:
    async def test_wrong_password_is_401_with_a_plain_message(self, api):
        r = await api.http.post("/api/v1/auth/login",
                                json={"username": "operator", "password": "nope"})
        assert r.status_code == 401
        assert error(r)["message"] == "User id or password is wrong."

    async def test_no_token_is_401(self, api):
        r = await api.http.get("/api/v1/batches")
        assert r.status_code == 401 and "Log in" in error(r)["message"]

    async def test_unknown_field_is_refused_naming_it(self, api):
        r = await api.http.post("/api/v1/auth/login",
                                json={"username": "qa", "password": "x", "pasword": "y"})
        assert r.status_code == 422 and "pasword" in error(r)["message"]


class TestRecipes:
    async def test_invalid_recipe_upload_points_at_the_problem(self, api):
        r = await api.http.post("/api/v1/recipes", json={"yaml": "ebr_recipe: 1\nheader: 3\n"},
                                headers=await api.login("author"))
        assert r.status_code == 422
        assert error(r)["code"] == "invalid_recipe" and "header" in error(r)["message"]

    async def test_uploading_the_same_version_again_is_a_no_op(self, api):
        text = (EXAMPLES / "vitamin-c-blend.yaml").read_text()
        r = await api.http.post("/api/v1/recipes", json={"yaml": text},
                                headers=await api.login("author"))
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "in_review"

    async def test_draft_recipe_cannot_run(self, api):
        r = await api.http.post(
            "/api/v1/batches",
            json={"batch_id": "B-DRAFT", "recipe_id": RECIPE[0], "version": RECIPE[1]},
            headers=await api.login("supervisor"),
        )
        assert r.status_code == 409 and "approver must sign" in error(r)["message"]

    async def test_operator_cannot_approve_a_recipe(self, api):
        r = await api.http.post(
            f"/api/v1/recipes/{RECIPE[0]}/versions/{RECIPE[1]}/approve",
            json={"username": "operator", "password": demo_user("operator").password},
            headers=await api.login("operator"),
        )
        assert r.status_code == 403

    async def test_approval_is_signed_and_shown(self, api):
        await api.approve_example()
        r = await api.http.get("/api/v1/recipes", headers=await api.login("auditor"))
        approved = next(x for x in r.json() if (x["recipe_id"], x["version"]) == RECIPE)
        assert approved["status"] == "approved" and approved["approved_by"] == "approver"


class TestBatchExecution:
    async def test_operator_cannot_start_a_batch(self, api):
        await api.approve_example()
        r = await api.http.post(
            "/api/v1/batches",
            json={"batch_id": "B-X", "recipe_id": RECIPE[0], "version": RECIPE[1]},
            headers=await api.login("operator"),
        )
        assert r.status_code == 403

    async def test_wrong_step_is_409_and_records_nothing(self, api):
        await api.approve_example()
        batch = await api.start_batch("B-WRONG")
        op = await api.login("operator")
        last = batch["steps"][-1]
        r = await api.http.post(f"/api/v1/batches/B-WRONG/steps/{last}/complete",
                                json=sign("operator"), headers=op)
        assert r.status_code == 409 and error(r)["code"] == "wrong_step"
        record = await api.http.get("/api/v1/batches/B-WRONG/record", headers=op)
        assert record.json()["steps"] == []

    async def test_wrong_signing_password_is_401_and_records_nothing(self, api):
        await api.approve_example()
        batch = await api.start_batch("B-PW")
        op = await api.login("operator")
        first = batch["steps"][0]
        api.scale.grams = Decimal("1200.00")
        assert (await api.http.post(f"/api/v1/batches/B-PW/steps/{first}/weigh",
                                    headers=op)).status_code == 200
        r = await api.http.post(f"/api/v1/batches/B-PW/steps/{first}/complete",
                                json=sign("operator") | {"password": "not-my-password-1"},
                                headers=op)
        assert r.status_code == 401
        record = await api.http.get("/api/v1/batches/B-PW/record", headers=op)
        assert record.json()["steps"] == []

    async def test_retried_request_with_the_same_key_is_applied_once(self, api):
        await api.approve_example()
        batch = await api.start_batch("B-RETRY")
        op = await api.login("operator")
        first = batch["steps"][0]
        api.scale.grams = Decimal("1200.00")
        await api.http.post(f"/api/v1/batches/B-RETRY/steps/{first}/weigh", headers=op)
        body = {"username": "operator", "password": demo_user("operator").password}
        headers = op | {"Idempotency-Key": "tablet-7-req-42"}
        one = await api.http.post(f"/api/v1/batches/B-RETRY/steps/{first}/complete",
                                  json=body, headers=headers)
        two = await api.http.post(f"/api/v1/batches/B-RETRY/steps/{first}/complete",
                                  json=body, headers=headers)
        assert one.status_code == two.status_code == 200 and one.json() == two.json()
        record = await api.http.get("/api/v1/batches/B-RETRY/record", headers=op)
        assert len(record.json()["steps"]) == 1

    async def test_starting_the_same_batch_twice_returns_the_first(self, api):
        await api.approve_example()
        await api.start_batch("B-TWICE")
        again = await api.start_batch("B-TWICE")
        assert again["batch_id"] == "B-TWICE"
        assert again["area"] == "main"  # no area asked, none in the register: the default

    async def test_unknown_batch_is_404(self, api):
        r = await api.http.get("/api/v1/batches/NOPE", headers=await api.login("qa"))
        assert r.status_code == 404 and error(r)["code"] == "not_found"


class TestPages:
    async def test_home_redirects_to_login_without_a_session(self, api):
        r = await api.http.get("/")
        assert r.status_code == 303 and r.headers["location"] == "/login"

    async def test_login_page_then_batches_page(self, api):
        r = await api.http.post("/login", data={"username": "qa",
                                                "password": demo_user("qa").password})
        assert r.status_code == 303
        page = await api.http.get("/", cookies={"ebr_session": r.cookies["ebr_session"]})
        assert page.status_code == 200 and "VC-BLEND" in page.text


class TestSupervisorActions:
    async def test_hold_and_restart_are_signed_with_a_reason(self, api):
        await api.approve_example()
        await api.start_batch("B-HOLD")
        sup = await api.login("supervisor")
        body = sign("supervisor") | {"reason": "Dust alarm"}
        r = await api.http.post("/api/v1/batches/B-HOLD/hold", json=body, headers=sup)
        assert r.status_code == 200, r.text
        batch = await api.http.get("/api/v1/batches/B-HOLD", headers=sup)
        assert batch.json()["execution"]["state"] == "held"
        assert batch.json()["execution"]["hold_reason"] == "Dust alarm"
        again = await api.http.post("/api/v1/batches/B-HOLD/hold", json=body, headers=sup)
        assert again.status_code == 409 and error(again)["code"] == "wrong_state"
        r = await api.http.post("/api/v1/batches/B-HOLD/restart", json=body, headers=sup)
        assert r.status_code == 200 and r.json()["state"] == "running"

    async def test_operator_cannot_hold(self, api):
        await api.approve_example()
        await api.start_batch("B-OPHOLD")
        op = await api.login("operator")
        r = await api.http.post("/api/v1/batches/B-OPHOLD/hold",
                                json=sign("operator") | {"reason": "x"},
                                headers=op)
        assert r.status_code == 403

    async def test_comment_on_a_step(self, api):
        await api.approve_example()
        batch = await api.start_batch("B-NOTE")
        op = await api.login("operator")
        r = await api.http.post(f"/api/v1/batches/B-NOTE/steps/{batch['steps'][0]}/comments",
                                json={"text": "Scale recalibrated this morning"}, headers=op)
        assert r.status_code == 200, r.text


class TestEngineUnavailable:
    async def test_update_without_a_worker_is_503_and_says_to_retry(self, api, temporal_env,
                                                                  monkeypatch):
        from api import routes_batches
        from store.batch_record import BatchRecordStore
        from tests.sample_plan import PLAN
        from workflows.batch import BatchWorkflow
        from workflows.messages import BatchInput

        monkeypatch.setattr(routes_batches, "ACCEPT_TIMEOUT_S", 1.0)
        store: BatchRecordStore = api.http._transport.app.state.services.records  # type: ignore[attr-defined]
        store.create_batch("B-NOWORKER", PLAN, {"scale": "SCALE-01"}, "sup")
        await temporal_env.client.start_workflow(
            BatchWorkflow.run, BatchInput("B-NOWORKER", PLAN, {"scale": "SCALE-01"}, "sup"),
            id="B-NOWORKER", task_queue="nobody-polls-this-queue",
        )
        r = await api.http.post("/api/v1/batches/B-NOWORKER/steps/d/w/weigh-a/weigh",
                                headers=await api.login("operator"))
        assert r.status_code == 503
        assert "same Idempotency-Key" in error(r)["message"]


class TestMaterialsAndDeviations:
    async def test_weighing_issues_material_from_a_released_lot(self, api):
        await api.approve_example()
        batch = await api.start_batch("B-LOTS")
        op = await api.login("operator")
        first = batch["steps"][0]
        api.scale.grams = Decimal("1200.00")
        await api.http.post(f"/api/v1/batches/B-LOTS/steps/{first}/weigh", headers=op)
        r = await api.http.post(f"/api/v1/batches/B-LOTS/steps/{first}/complete",
                                json=sign("operator"), headers=op)
        assert r.status_code == 200, r.text
        record = (await api.http.get("/api/v1/batches/B-LOTS/record", headers=op)).json()
        assert record["steps"][0]["values"]["lots"].startswith("ASC-2601 ")

    async def test_disposition_of_an_unknown_deviation_is_refused(self, api):
        await api.approve_example()
        await api.start_batch("B-DEV")
        qa = await api.login("qa")
        r = await api.http.post(
            "/api/v1/batches/B-DEV/deviations/DEV-999999/disposition",
            json={"username": "qa", "password": demo_user("qa").password, "disposition": "accept",
                  "rationale": "n/a"}, headers=qa)
        assert r.status_code == 409 and "does not hold a step" in error(r)["message"]
