"""The batch API's operator actions beyond completing steps: an operator's hold with its
reason and the hold time it reports, GS1 scans of pick steps, typed entries, request
bodies that forbid unknown fields, and the recipe's validity window at batch start."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from api.errors import ApiError
from api.routes_batches import check_validity
from runtime.seed import demo_user
from tests.api.test_api import api, error  # noqa: F401  (the fixture)
from tests.sample_plan import PLAN

PASSWORD = {"username": "operator", "password": demo_user("operator").password}


class TestOperatorHold:
    async def test_operator_holds_with_a_reason_and_the_hold_time_is_reported(self, api):  # noqa: F811
        await api.approve_example()
        await api.start_batch("B-OPHOLD-REASON")
        op = await api.login("operator")
        await api.wait_until_running("B-OPHOLD-REASON", op)
        # A 503 ("no worker answered within 10 s", a busy machine) is retried with the same
        # key, as the tablet does; the hold is applied once.
        keyed = op | {"Idempotency-Key": "hold-1"}
        for _ in range(6):
            r = await api.http.post("/api/v1/batches/B-OPHOLD-REASON/request-hold",
                                    json=PASSWORD | {"reason": "Powder on the floor"},
                                    headers=keyed)
            if r.status_code != 503:
                break
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "held"
        batch = (await api.http.get("/api/v1/batches/B-OPHOLD-REASON", headers=op)).json()
        view = batch["execution"]
        assert view["state"] == "held" and "Powder on the floor" in view["hold_reason"]
        assert view["held_since"] and batch["elapsed"]["hold_elapsed_s"] is not None
        assert batch["elapsed"]["held_total_s"] >= 0
        assert [a["action"] for a in view["pending_signatures"]] == ["restart"]
        again = await api.http.post("/api/v1/batches/B-OPHOLD-REASON/request-hold",
                                    json=PASSWORD | {"reason": "again"}, headers=op)
        assert again.status_code == 409 and error(again)["code"] == "wrong_state"

    async def test_a_hold_without_a_reason_or_with_unknown_fields_is_422(self, api):  # noqa: F811
        await api.approve_example()
        await api.start_batch("B-OPHOLD2")
        op = await api.login("operator")
        for body in (PASSWORD, PASSWORD | {"reason": "x", "urgent": True}):
            r = await api.http.post("/api/v1/batches/B-OPHOLD2/request-hold", json=body,
                                    headers=op)
            assert r.status_code == 422 and error(r)["code"] == "invalid_request"


class TestScansAndEntries:
    async def test_a_scan_on_a_step_that_is_not_a_pick_is_409(self, api):  # noqa: F811
        await api.approve_example()
        batch = await api.start_batch("B-SCAN")
        op = await api.login("operator")
        first = batch["steps"][0]
        r = await api.http.post(f"/api/v1/batches/B-SCAN/steps/{first}/scan",
                                json={"barcode": "(01)07601234560013(10)ASC-2601"}, headers=op)
        assert r.status_code == 409 and error(r)["code"] == "wrong_step"
        r = await api.http.post(f"/api/v1/batches/B-SCAN/steps/{first}/scan",
                                json={"barcode": "x", "lot": "y"}, headers=op)
        assert r.status_code == 422

    async def test_an_entry_may_be_typed_but_not_a_list(self, api):  # noqa: F811
        await api.approve_example()
        batch = await api.start_batch("B-TYPED")
        op = await api.login("operator")
        first = batch["steps"][0]
        r = await api.http.post(f"/api/v1/batches/B-TYPED/steps/{first}/complete",
                                json=PASSWORD | {"value": [1, 2]}, headers=op)
        assert r.status_code == 422


class TestValidityWindow:
    def test_a_recipe_runs_only_inside_its_window(self):
        plan = replace(PLAN, effective="2026-03-01", expiry="2026-12-31")
        check_validity(plan, date(2026, 3, 1))
        check_validity(plan, date(2026, 12, 31))
        with pytest.raises(ApiError) as early:
            check_validity(plan, date(2026, 2, 28))
        assert early.value.status == 409 and "effective from 2026-03-01" in early.value.message
        with pytest.raises(ApiError) as late:
            check_validity(plan, date(2027, 1, 1))
        assert late.value.code == "recipe_expired" and "approve a new version" in (
            late.value.message)
        check_validity(PLAN, date(1999, 1, 1))  # no window: always
