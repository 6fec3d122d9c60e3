"""`ebr demo`: one batch of the example recipe, end to end, through the real HTTP API.

It approves the recipe (approver), starts a batch (supervisor), performs every
step with e-signatures and weights from the simulated MT-SICS scale (operator),
releases it (QA), then checks the signed eBMR. It uses a running stack if there
is one, and otherwise starts one and stops it again.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from devices.scale_sim import ScaleControl
from recipes import units
from reports.verify import verify_pdf
from runtime.seed import demo_user
from runtime.stack import api_healthy, start_stack
from settings.config import Settings

RECIPE_ID, RECIPE_VERSION = "VC-BLEND", "1.0.0"


class DemoError(Exception):
    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Session:
    http: httpx.Client
    role: str

    @classmethod
    def login(cls, base_url: str, role: str) -> Session:
        user = demo_user(role)
        http = httpx.Client(base_url=base_url, timeout=120.0)
        token = _ok(http.post("/api/v1/auth/login",
                              json={"username": user.username, "password": user.password}))
        http.headers["Authorization"] = f"Bearer {token['access_token']}"
        return cls(http, role)

    @property
    def username(self) -> str:
        return demo_user(self.role).username

    @property
    def password(self) -> str:
        return demo_user(self.role).password

    def get(self, path: str) -> Any:
        return _ok(self.http.get(path))

    def post(self, path: str, body: dict[str, Any] | None = None, key: str | None = None) -> Any:
        headers = {"Idempotency-Key": key} if key else {}
        return _ok(self.http.post(path, json=body or {}, headers=headers))


def _ok(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
            message, code = error["message"], error["code"]
        except (ValueError, KeyError, TypeError):
            message, code = response.text, ""
        raise DemoError(f"{response.request.method} {response.request.url.path} -> "
                        f"{response.status_code}: {message}", code)
    return response.json()


def run_demo(settings: Settings, say=print) -> Path:  # type: ignore[no-untyped-def]
    group = None
    if not api_healthy(settings):
        say("No ebr stack is running: starting one for the demo (logs in var/log/)…")
        group = start_stack(settings)
    try:
        return _drive(settings, say)
    finally:
        if group is not None:
            say("Stopping the stack the demo started…")
            group.stop()


def _drive(settings: Settings, say) -> Path:  # type: ignore[no-untyped-def]
    batch_id = "DEMO-" + datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    start_batch(settings, batch_id, say)
    perform_steps(settings, batch_id, say)
    return release_and_verify(settings, batch_id, say)


def start_batch(settings: Settings, batch_id: str, say=print) -> None:  # type: ignore[no-untyped-def]
    """Approve the example recipe if needed (approver) and start `batch_id` (supervisor)."""
    base = settings.api_url
    approver = Session.login(base, "approver")
    recipe = next(
        (r for r in approver.get("/api/v1/recipes")
         if (r["recipe_id"], r["version"]) == (RECIPE_ID, RECIPE_VERSION)),
        None,
    )
    if recipe is None:
        raise DemoError(f"Recipe {RECIPE_ID} {RECIPE_VERSION} is not loaded: run `ebr up` once.")
    if recipe["status"] != "approved":
        approver.post(f"/api/v1/recipes/{RECIPE_ID}/versions/{RECIPE_VERSION}/approve",
                      {"username": approver.username, "password": approver.password})
        say(f"Approved recipe {RECIPE_ID} {RECIPE_VERSION} (e-signature: approver).")

    supervisor = Session.login(base, "supervisor")
    started = supervisor.post("/api/v1/batches", {
        "batch_id": batch_id, "recipe_id": RECIPE_ID, "version": RECIPE_VERSION,
    })
    say(f"Started batch {batch_id}: {len(started['steps'])} steps, equipment "
        f"{started['equipment']}.")


def perform_steps(  # type: ignore[no-untyped-def]
    settings: Settings, batch_id: str, say=print, max_steps: int | None = None
) -> int:
    """Perform the batch's steps as the operator (at most `max_steps`); returns how many."""
    operator = Session.login(settings.api_url, "operator")
    scale = ScaleControl(_devices(settings)["scale_control"])
    done = 0
    idle_since: float | None = None
    while max_steps is None or done < max_steps:
        batch = operator.get(f"/api/v1/batches/{batch_id}")
        execution = batch["execution"]
        step_id = execution["current_step_id"]
        if step_id is None:
            if execution["state"] != "running":
                break
            # Running with no operator step: the procedure is moving on, or the batch is
            # doing a step itself (a device phase, a calculation). Wait for the next one.
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > 120:
                raise DemoError(f"Batch {batch_id} has waited 120 s with no step to perform.")
            time.sleep(0.3)
            continue
        idle_since = None
        step = next(s for s in batch["plan"]["steps"] if s["step_id"] == step_id)
        _perform(operator, scale, batch_id, step, say)
        done += 1
    return done


def release_and_verify(settings: Settings, batch_id: str, say=print) -> Path:  # type: ignore[no-untyped-def]
    """QA releases the batch; the signed eBMR is downloaded and verified; returns its path."""
    qa = Session.login(settings.api_url, "qa")
    wait_until_complete(qa, batch_id)
    qa.post(f"/api/v1/batches/{batch_id}/release",
            {"username": qa.username, "password": qa.password, "decision": "released"},
            key=f"{batch_id}-release")
    say(f"QA released {batch_id} (e-signature: qa).")
    report = _wait_for_report(qa, batch_id)
    pdf = qa.http.get(f"/api/v1/batches/{batch_id}/report.pdf")
    if pdf.status_code != 200:
        raise DemoError(f"Downloading the eBMR failed with {pdf.status_code}.")
    check = verify_pdf(pdf.content, settings.pki_dir / "root.pem")
    if not check.ok:
        raise DemoError(f"The eBMR signature did not verify: {'; '.join(check.problems)}")
    say(f"eBMR signed by {check.signer}; signature intact, valid and trusted "
        f"({report['pages']} pages).")
    return Path(report["path"]).resolve()


def _perform(operator: Session, scale: ScaleControl, batch_id: str, step: dict[str, Any],
             say) -> None:  # type: ignore[no-untyped-def]
    url = f"/api/v1/batches/{batch_id}/steps/{step['step_id']}"
    body: dict[str, Any] = {"username": operator.username, "password": operator.password}
    kind = step["kind"]
    if kind == "weigh":
        material = step["material"]
        # The operator puts the material on the scale: the simulator's weight is set
        # in grams, as a real scale would show it.
        scale.set_weight(_grams(material["target"], material["unit"]))
        reading = operator.post(f"{url}/weigh")
        say(f"  {step['title']}: scale read {reading['device_value']} "
            f"{reading['device_unit']} ({reading['raw_frames'][-1]!r})")
    elif kind == "mix":
        say(f"  {step['title']}: mixer running {step['speed_rpm']} rpm for "
            f"{step['duration_s']} s (simulated PLC clock)…")
        _wait_for_mix(operator, batch_id)
    elif kind == "check":
        limits = step["limits"]
        value = (Decimal(limits["low"]) + Decimal(limits["high"])) / 2
        body["value"] = str(value)
        say(f"  {step['title']}: entered {value} {limits['unit']}")
    else:
        say(f"  {step['title']}: confirmed")
    outcome = _complete(operator, url, body, key=f"{batch_id}-{step['step_id']}")
    say(f"    signed 'performed' by operator, result {outcome['result']}, "
        f"sha256 {outcome['content_sha256'][:12]}…")


def wait_until_complete(session: Session, batch_id: str, timeout_s: float = 60) -> None:
    """After the last step the batch finishes writing its record before it shows complete
    (a second or so); QA releases only a complete batch."""
    deadline = time.monotonic() + timeout_s
    while session.get(f"/api/v1/batches/{batch_id}")["execution"]["state"] == "running":
        if time.monotonic() > deadline:
            raise DemoError(f"Batch {batch_id} did not complete within {timeout_s:.0f} s.")
        time.sleep(0.3)


def _wait_for_mix(operator: Session, batch_id: str, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not operator.get(f"/api/v1/batches/{batch_id}")["execution"]["mixing"]:
            return
        time.sleep(0.5)
    raise DemoError("The mix did not finish in time.")


def _complete(operator: Session, url: str, body: dict[str, Any], key: str) -> Any:
    """Sign the step; a mixer still finishing its run is waited for, not an error."""
    deadline = time.monotonic() + 120
    while True:
        try:
            return operator.post(f"{url}/complete", body, key=key)
        except DemoError as exc:
            if exc.code != "mixing" or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _wait_for_report(session: Session, batch_id: str, timeout_s: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        report = session.get(f"/api/v1/batches/{batch_id}")["execution"]["report"]
        if report:
            return report
        time.sleep(0.5)
    raise DemoError("The signed eBMR was not published in time.")


def _grams(value: str, unit: str) -> str:
    return str(units.convert(Decimal(value), unit, "g").quantize(Decimal("0.01")))


def _devices(settings: Settings) -> dict[str, Any]:
    try:
        return json.loads(settings.devices_state_file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DemoError(
            "The simulated devices are not running (no var/run/devices.json); the demo "
            "needs the stack's simulated scale."
        ) from exc
