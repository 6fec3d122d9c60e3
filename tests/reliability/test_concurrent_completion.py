"""Two tablets and a hundred parallel requests complete the same step, on the real stack
(dev server with its database file, worker and API in their own processes): exactly one
is applied; every other one gets 409 naming who completed the step and when; one record
and one signature for the step."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlmodel import Session, select

from devices.scale_sim import ScaleControl
from runtime.demo import _devices, _grams, start_batch
from runtime.seed import demo_user
from store.db import make_engine
from store.models import Signature

pytestmark = pytest.mark.slow
PARALLEL = 100


async def _login(http: httpx.AsyncClient, role: str) -> dict[str, str]:
    user = demo_user(role)
    r = await http.post("/api/v1/auth/login",
                        json={"username": user.username, "password": user.password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_a_hundred_parallel_completions_of_one_step_apply_once(stack):
    settings, _ = stack
    start_batch(settings, "B-RACE", say=lambda *_: None)
    asyncio.run(_race(settings))


async def _race(settings) -> None:  # type: ignore[no-untyped-def]
    operator = demo_user("operator")
    limits = httpx.Limits(max_connections=PARALLEL)
    async with httpx.AsyncClient(base_url=settings.api_url, timeout=120, limits=limits) as http:
        tablets = [await _login(http, "operator"), await _login(http, "operator")]
        batch = (await http.get("/api/v1/batches/B-RACE", headers=tablets[0])).json()
        first = batch["execution"]["current_step_id"]
        step = next(s for s in batch["plan"]["steps"] if s["step_id"] == first)
        material = step["material"]
        ScaleControl(_devices(settings)["scale_control"]).set_weight(
            _grams(material["target"], material["unit"]))
        url = f"/api/v1/batches/B-RACE/steps/{first}"
        assert (await http.post(f"{url}/weigh", headers=tablets[0])).status_code == 200
        body = {"username": operator.username, "password": operator.password}

        async def tap(i: int) -> httpx.Response:
            # Each tap is its own request (its own key): a double tap, the other tablet.
            # Like the tablet page, a 503 ("retry with the same key") is retried with
            # backoff; Temporal admits at most 10 updates in flight per workflow, so part
            # of a burst of 100 first hears 503.
            headers = tablets[i % 2] | {"Idempotency-Key": f"tap-{i}-{uuid.uuid4().hex[:6]}"}
            pause = 0.5
            for _ in range(40):
                answer = await http.post(f"{url}/complete", json=body, headers=headers)
                if answer.status_code != 503:
                    return answer
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
            return answer

        answers = await asyncio.gather(*(tap(i) for i in range(PARALLEL)))

    ok = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code != 200]
    assert len(ok) == 1, [a.text for a in answers if a.status_code != 409][:3]
    assert {a.status_code for a in refused} == {409}, sorted(
        {a.json()["error"]["message"][:120] for a in refused if a.status_code != 409})
    for answer in refused:
        message = answer.json()["error"]["message"]
        assert f"already completed by {operator.full_name} at 20" in message, message

    engine = make_engine(settings.resolved_database_url)
    try:
        with Session(engine) as session:
            signatures = session.exec(
                select(Signature).where(Signature.subject == f"B-RACE/{first}")).all()
    finally:
        engine.dispose()
    assert len(signatures) == 1, [s.key for s in signatures]
