"""A shipped example other than the vitamin C blend, on the real demo stack.

`ebr up` seeds the register, simulators and stock every example needs
(tests/runtime/test_demo_site.py checks all of them quickly); this runs one through,
as an evaluator would: the wet granulation, which writes the fluid-bed dryer's
setpoints to its (simulated) PLC, runs two granulator mixes on the mixer PLC, branches
in parallel, repeats a check, and has a four-eyes dispensing verified by a second
operator. The demo driver (runtime/demo.py) approves, starts, performs every step and
releases it; the signed eBMR is verified.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from reports.verify import verify_pdf
from runtime.demo import perform_steps, release_and_verify, start_batch

pytestmark = pytest.mark.slow


def test_the_wet_granulation_example_runs_to_release_on_the_demo_stack(stack):
    settings, _ = stack
    lines: list[str] = []
    began = time.monotonic()

    started = start_batch(settings, "WG-DEMO-1", lines.append, "WG-PARA", "1.0.0")
    performed = perform_steps(settings, "WG-DEMO-1", lines.append)
    pdf_path = release_and_verify(settings, "WG-DEMO-1", lines.append)
    took = time.monotonic() - began

    assert started["equipment"] == {
        "scale": "SCALE-01", "granulator": "MIXER-01", "dryer": "DRYER-01"}
    check = verify_pdf(pdf_path.read_bytes(), settings.pki_dir / "root.pem")
    assert check.ok and check.record is not None, check.problems
    record = check.record
    assert record["batch"]["state"] == "released"
    steps = {s["step_id"].rsplit("/", 1)[-1]: s for s in record["steps"]}
    # The dryer's PLC held what was written (read back by the driver).
    inlet, air = steps["set-inlet-temperature"], steps["set-air-flow"]
    assert (inlet["result"], inlet["values"]["equipment"], inlet["values"]["tag"]) == (
        "pass", "DRYER-01", "inlet_temp_setpoint")
    assert Decimal(inlet["values"]["value"]) == 60 and Decimal(air["values"]["value"]) == 120
    assert steps["weigh-paracetamol"]["device"]["equipment_id"] == "SCALE-01"
    assert steps["weigh-paracetamol"]["verification"]["username"] == "operator2"
    assert performed >= 14, "\n".join(lines)
    print(f"wet granulation on the demo stack: {performed} steps, {took:.0f} s")
