"""`ebr demo`: one batch of an example recipe, end to end, through the real HTTP API.

It approves the recipe (approver), starts a batch (supervisor), performs every
step with e-signatures and weights from the simulated MT-SICS scales (operator),
releases it (QA), then checks the signed eBMR. It uses a running stack if there
is one, and otherwise starts one and stops it again.

The steps are driven by what the batch says it awaits (`execution.awaiting`), so any
example in recipes/examples/ runs: weighings on the bound scale's simulator, label scans
of the first-expiring released lot, entries and checks at the middle of their limits,
sign-offs by the role the recipe names, and four-eyes verifications by a second person
(`operator2` for an operator's step). Device phases (mixes, PLC writes and reads,
calculations, labels) are the batch's own: the driver waits for them.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from devices.scale_sim import ScaleControl
from recipes import units
from reports.verify import verify_pdf
from runtime.equipment import load_register
from runtime.seed import DemoUser, demo_user, second_demo_user
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

    user: DemoUser | None = None

    @classmethod
    def login(cls, base_url: str, role: str, user: DemoUser | None = None) -> Session:
        user = user or demo_user(role)
        http = httpx.Client(base_url=base_url, timeout=120.0)
        token = _ok(http.post("/api/v1/auth/login",
                              json={"username": user.username, "password": user.password}))
        http.headers["Authorization"] = f"Bearer {token['access_token']}"
        return cls(http, role, user)

    @property
    def username(self) -> str:
        return (self.user or demo_user(self.role)).username

    @property
    def password(self) -> str:
        return (self.user or demo_user(self.role)).password

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


def run_demo(  # type: ignore[no-untyped-def]
    settings: Settings, say=print, recipe_id: str = RECIPE_ID
) -> Path:
    """One batch of the seeded example `recipe_id` (the vitamin C blend by default)."""
    group = None
    if not api_healthy(settings):
        say("No ebr stack is running: starting one for the demo (logs in var/log/)…")
        group = start_stack(settings)
    try:
        return _drive(settings, say, recipe_id)
    finally:
        if group is not None:
            say("Stopping the stack the demo started…")
            group.stop()


def _drive(settings: Settings, say, recipe_id: str) -> Path:  # type: ignore[no-untyped-def]
    batch_id = "DEMO-" + datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    start_batch(settings, batch_id, say, recipe_id, None if recipe_id != RECIPE_ID else
                RECIPE_VERSION)
    perform_steps(settings, batch_id, say)
    return release_and_verify(settings, batch_id, say)


def start_batch(  # type: ignore[no-untyped-def]
    settings: Settings, batch_id: str, say=print, recipe_id: str = RECIPE_ID,
    version: str | None = RECIPE_VERSION,
) -> dict[str, Any]:
    """Approve a seeded example recipe if needed (approver) and start `batch_id` with it
    (supervisor; `version` None: its newest); returns the API's answer (the bound
    equipment, the steps)."""
    base = settings.api_url
    approver = Session.login(base, "approver")
    versions = [r for r in approver.get("/api/v1/recipes") if r["recipe_id"] == recipe_id
                and (version is None or r["version"] == version)]
    if not versions:
        raise DemoError(f"Recipe {recipe_id} {version or ''} is not loaded: run `ebr up` once "
                        "(it seeds every recipe in recipes/examples/).")
    recipe = max(versions, key=lambda r: [int(p) for p in r["version"].split(".")
                                          if p.isdigit()])
    version = recipe["version"]
    if recipe["status"] != "approved":
        approver.post(f"/api/v1/recipes/{recipe_id}/versions/{version}/approve",
                      {"username": approver.username, "password": approver.password})
        say(f"Approved recipe {recipe_id} {version} (e-signature: approver).")

    supervisor = Session.login(base, "supervisor")
    started = supervisor.post("/api/v1/batches", {
        "batch_id": batch_id, "recipe_id": recipe_id, "version": version,
    })
    say(f"Started batch {batch_id}: {len(started['steps'])} steps, equipment "
        f"{started['equipment']}.")
    return started


def perform_steps(  # type: ignore[no-untyped-def]
    settings: Settings, batch_id: str, say=print, max_steps: int | None = None
) -> int:
    """Perform the batch's steps (at most `max_steps`) as the people the recipe names;
    returns how many were performed (verifications by a second person not counted)."""
    crew = _Crew(settings)
    operator = crew.session("operator")
    done = 0
    idle_since: float | None = None
    while max_steps is None or done < max_steps:
        batch = operator.get(f"/api/v1/batches/{batch_id}")
        execution = batch["execution"]
        if execution["state"] != "running":
            break
        todo = next((a for a in execution["awaiting"] if a["action"] in _ACTIONS), None)
        if todo is None:
            # Running with no step for a person: the procedure is moving on, or the batch
            # is doing a step itself (a device phase, a calculation). Wait for the next one.
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > 120:
                raise DemoError(f"Batch {batch_id} has waited 120 s with no step to perform.")
            time.sleep(0.3)
            continue
        idle_since = None
        step = next(s for s in batch["plan"]["steps"] if s["step_id"] == todo["step_id"])
        if todo["action"] == "verify":
            _verify(crew, batch_id, step, execution, say)
            continue
        _perform(crew, batch, step, say)
        done += 1
    return done


def release_and_verify(settings: Settings, batch_id: str, say=print) -> Path:  # type: ignore[no-untyped-def]
    """QA releases the batch; the signed eBMR is downloaded and verified; returns its path."""
    qa = Session.login(settings.api_url, "qa")
    wait_until_complete(qa, batch_id)
    steps = qa.get(f"/api/v1/batches/{batch_id}")["execution"]["steps"]
    if any(s.get("signed_by") == demo_user("qa").full_name for s in steps):
        # QA signed a step (a recipe's `sign: {role: qa}`) and may not also release it.
        qa = Session.login(settings.api_url, "qa", second_demo_user("qa", besides="qa"))
    qa.post(f"/api/v1/batches/{batch_id}/release",
            {"username": qa.username, "password": qa.password, "decision": "released"},
            key=f"{batch_id}-release")
    say(f"QA released {batch_id} (e-signature: {qa.username}).")
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


_ACTIONS = ("weigh", "scan", "perform", "verify")


class _Crew:
    """The demo users who work on a batch, each logged in once, and the simulators."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._sessions: dict[str, Session] = {}
        self._devices: dict[str, Any] | None = None

    def session(self, role: str, user: DemoUser | None = None) -> Session:
        user = user or demo_user(role)
        if user.username not in self._sessions:
            self._sessions[user.username] = Session.login(self.settings.api_url, role, user)
        return self._sessions[user.username]

    def scale(self, equipment_id: str) -> ScaleControl:
        """The control channel of the simulator playing `equipment_id`: its own when the
        simulators play a balance with that serial number, else the default one."""
        if self._devices is None:
            self._devices = _devices(self.settings)
        serial = load_register(self.settings).devices.get(equipment_id).serial_number
        own = self._devices.get("scales", {}).get(serial or "", {}).get("scale_control")
        return ScaleControl(own or self._devices["scale_control"])


def _perform(crew: _Crew, batch: dict[str, Any], step: dict[str, Any], say) -> None:  # type: ignore[no-untyped-def]
    batch_id = batch["batch_id"]
    url = f"/api/v1/batches/{batch_id}/steps/{step['step_id']}"
    person = crew.session(step.get("perform_role") or "operator")
    body: dict[str, Any] = {"username": person.username, "password": person.password}
    kind = step["kind"]
    if kind == "weigh":
        equipment_id = batch["equipment"][step["equipment_role"]]
        view = next(s for s in batch["execution"]["steps"] if s["step_id"] == step["step_id"])
        material = step["material"]
        target = view.get("target") or material["target"]  # a CALC result when calculated
        # The operator puts the material on the scale: the simulator's load is set in the
        # scale's own unit, as a real scale would show it.
        scale = crew.scale(equipment_id)
        scale.set_weight(_in_unit(target, material["unit"], scale.state()["unit"]))
        reading = person.post(f"{url}/weigh")
        say(f"  {step['title']}: {equipment_id} read {reading['device_value']} "
            f"{reading['device_unit']} ({reading['raw_frames'][-1]!r})")
    elif kind == "pick":
        barcode = _fefo_label(person, step["material"]["material_code"])
        scanned = person.post(f"{url}/scan", {"barcode": barcode})
        say(f"  {step['title']}: scanned {barcode} (lot {scanned.get('lot_number', '?')})")
    elif kind == "timer":
        # The hold time runs in real time on the stack (15 min is 15 min).
        ran = (batch.get("elapsed") or {}).get("steps", {}).get(step["step_id"]) or 0
        left = max(0, (step.get("min_duration_s") or 0) - ran)
        say(f"  {step['title']}: waiting {left} s for the recipe's minimum hold time…")
        time.sleep(left + 1)
    elif kind == "mix":
        say(f"  {step['title']}: mixer running {step['speed_rpm']} rpm for "
            f"{step['duration_s']} s (simulated PLC clock)…")
        _wait_for_mix(person, batch_id)
    elif step.get("limits") or kind in ("check", "entry"):
        body["value"] = _middle_value(step)
        unit = (step.get("limits") or {}).get("unit") or step.get("unit") or ""
        say(f"  {step['title']}: entered {body['value']} {unit}".rstrip())
    else:
        say(f"  {step['title']}: confirmed")
    outcome = _complete(person, url, body, key=f"{batch_id}-{step['step_id']}")
    say(f"    signed '{step.get('sign_meaning') or 'performed'}' by {person.username}, result "
        f"{outcome['result']}, sha256 {outcome['content_sha256'][:12]}…")


def _verify(crew: _Crew, batch_id: str, step: dict[str, Any], execution: dict[str, Any],
            say) -> None:  # type: ignore[no-untyped-def]
    """A second person of the role the recipe names, not the one who performed it."""
    view = next(s for s in execution["steps"] if s["step_id"] == step["step_id"])
    role = step["verify_role"]
    verifier = crew.session(role, second_demo_user(role, besides=view.get("signed_by") or ""))
    verifier.post(f"/api/v1/batches/{batch_id}/steps/{step['step_id']}/verify",
                  {"username": verifier.username, "password": verifier.password},
                  key=f"{batch_id}-{step['step_id']}-verify")
    say(f"    verified by {verifier.username} ({role}, four-eyes)")


def _middle_value(step: dict[str, Any]) -> str | int | bool:
    """What the demo enters: the middle of the limits (an integer entry rounds it)."""
    kind = step.get("value_type") or "decimal"
    if kind == "boolean":
        return True
    limits = step.get("limits")
    if limits is None:
        return "as instructed" if kind == "text" else "1"
    middle = (Decimal(limits["low"]) + Decimal(limits["high"])) / 2
    if kind == "integer":
        return int(middle.to_integral_value())
    return str(middle)


def _fefo_label(person: Session, material_code: str) -> str:
    """The GS1 label of the first-expiring released lot of a material, as on its
    container: GTIN (01), lot (10) and expiry (17)."""
    material = next(m for m in person.get("/api/v1/wms/materials") if m["code"] == material_code)
    lots = [lot for lot in person.get(f"/api/v1/wms/lots?material={material_code}")
            if lot["status"] == "released" and Decimal(lot["on_hand"]) > 0]
    if not lots:
        raise DemoError(f"No released lot of {material_code} in stock for the pick step.")
    lot = min(lots, key=lambda x: (x["expiry"] or "9999-12-31", x["lot_number"]))
    label = f"(01){material['gtin']}(10){lot['lot_number']}"
    if lot["expiry"]:
        label += "(17)" + date.fromisoformat(lot["expiry"]).strftime("%y%m%d")
    return label


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


def _in_unit(value: str, unit: str, scale_unit: str) -> str:
    return str(units.convert(Decimal(value), unit, scale_unit).quantize(Decimal("0.0001")))


def _devices(settings: Settings) -> dict[str, Any]:
    try:
        return json.loads(settings.devices_state_file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DemoError(
            "The simulated devices are not running (no var/run/devices.json); the demo "
            "needs the stack's simulated scale."
        ) from exc
