"""Captured requests replayed later, oversized tokens and hostile file names, against the
API in process with a real worker on a real local Temporal server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlmodel import Session, select

from activities.labels import LabelActivities
from runtime.seed import EXAMPLES, demo_user
from store.models import Signature
from tests.app_rig import AppRig, app_with_worker
from tests.logins import bearer

RECIPE = ("VC-BLEND", "1.0.0")


@pytest.fixture
async def rig(temporal_env, tmp_path: Path) -> AsyncIterator[AppRig]:  # type: ignore[no-untyped-def]
    async with app_with_worker(temporal_env, tmp_path, "security") as rig:
        yield rig


async def start(rig: AppRig, batch_id: str) -> list[str]:
    http = rig.http
    r = await http.post(f"/api/v1/recipes/{RECIPE[0]}/versions/{RECIPE[1]}/approve",
                        json={"username": "approver", "password": demo_user("approver").password},
                        headers=await bearer(http, "approver"))
    assert r.status_code == 200, r.text
    r = await http.post("/api/v1/batches",
                        json={"batch_id": batch_id, "recipe_id": RECIPE[0], "version": RECIPE[1]},
                        headers=await bearer(http, "supervisor"))
    assert r.status_code == 201, r.text
    return r.json()["steps"]


def signatures(rig: AppRig, batch_id: str) -> list[Signature]:
    with Session(rig.services.engine) as db:
        return list(db.exec(select(Signature).where(Signature.batch_id == batch_id)))


async def test_a_captured_signed_request_replayed_later_never_signs_twice(rig: AppRig):
    steps = await start(rig, "B-REPLAY")
    op = await bearer(rig.http, "operator")
    url = f"/api/v1/batches/B-REPLAY/steps/{steps[0]}"
    rig.scale.grams = Decimal("1200.00")
    assert (await rig.http.post(f"{url}/weigh", headers=op)).status_code == 200
    captured = {"json": {"username": "operator", "password": demo_user("operator").password},
                "headers": op | {"Idempotency-Key": "tablet-3-req-9"}}
    first = await rig.http.post(f"{url}/complete", **captured)
    assert first.status_code == 200, first.text

    # The batch moves on; the captured request is sent again, as is and with a new key.
    second_url = f"/api/v1/batches/B-REPLAY/steps/{steps[1]}"
    rig.scale.grams = Decimal("800.00")  # the second material's target
    assert (await rig.http.post(f"{second_url}/weigh", headers=op)).status_code == 200
    r = await rig.http.post(f"{second_url}/complete",
                            json={"username": "operator",
                                  "password": demo_user("operator").password}, headers=op)
    assert r.status_code == 200, r.text
    same_key = await rig.http.post(f"{url}/complete", **captured)
    assert same_key.status_code == 200 and same_key.json() == first.json()
    new_key = await rig.http.post(f"{url}/complete", json=captured["json"],
                                  headers=op | {"Idempotency-Key": "attacker-1"})
    assert new_key.status_code == 409, new_key.text
    assert set(new_key.json()) == {"error"}

    # The captured token stops working once its session ends.
    assert (await rig.http.post("/api/v1/auth/logout", headers=op)).status_code in (200, 204)
    after_logout = await rig.http.post(f"{url}/complete", json=captured["json"],
                                       headers=op | {"Idempotency-Key": "attacker-2"})
    assert after_logout.status_code == 401

    subjects = [s.subject for s in signatures(rig, "B-REPLAY")]
    assert sorted(subjects) == sorted(f"B-REPLAY/{s}" for s in steps[:2])


async def test_an_oversized_token_is_refused_with_401_not_an_error(rig: AppRig):
    for token in ("x" * 100_000, "eyJ" + "A" * 20_000 + "." + "B" * 20_000 + ".sig"):
        r = await rig.http.get("/api/v1/batches", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, r.text[:200]
        assert set(r.json()) == {"error"} and "Traceback" not in r.text


async def test_path_traversal_in_batch_ids_never_reaches_the_file_system(rig: AppRig):
    sup = await bearer(rig.http, "supervisor")
    for hostile in ("../../etc/passwd", "..", "a/../../b", "..\\..\\win.ini", "%2e%2e%2fx"):
        r = await rig.http.post("/api/v1/batches", headers=sup,
                                json={"batch_id": hostile, "recipe_id": RECIPE[0],
                                      "version": RECIPE[1]})
        assert r.status_code == 422, (hostile, r.status_code)
    secrets = rig.services.settings.var_dir / "secrets.json"
    for path in ("/api/v1/batches/..%2F..%2Fsecrets.json/report.pdf",
                 "/api/v1/batches/..%2Fsecrets/report.pdf",
                 "/api/v1/batches/%2e%2e/report.pdf"):
        r = await rig.http.get(path, headers=sup)
        assert r.status_code == 404, (path, r.status_code)
        if secrets.exists():
            assert secrets.read_bytes() not in r.content


async def test_a_hostile_recipe_file_name_is_stored_as_text_never_as_a_path(
    rig: AppRig, tmp_path: Path
):
    author = await bearer(rig.http, "author")
    text = (EXAMPLES / "vitamin-c-blend.yaml").read_text(encoding="utf-8").replace(
        "version: 1.0.0", "version: 9.9.9", 1)
    before = {p for p in tmp_path.parent.rglob("*") if p.is_file()}
    r = await rig.http.post("/api/v1/recipes", headers=author,
                            json={"yaml": text, "filename": "../../../../evil.yaml"})
    assert r.status_code == 201, r.text
    created = {p for p in tmp_path.parent.rglob("*") if p.is_file()} - before
    assert not [p for p in created if p.name == "evil.yaml"]


@pytest.mark.parametrize("batch_id,step_id", [
    ("..", "weigh"), ("B-1", ".."), ("B-1", "../../x"), ("../B", "a/b#2"), (".", "/etc/passwd"),
])
def test_label_files_stay_inside_the_labels_directory(tmp_path: Path, batch_id, step_id):
    labels = tmp_path / "labels"
    path = LabelActivities(labels).path_for(batch_id, step_id)
    assert path.resolve().is_relative_to(labels.resolve()), path
