"""The simulated scale's fault modes, set over its control channel as a demo or a test
would, each seen by the driver as the right ScaleError within its answer timeout; no
weight ever comes out of a faulty answer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal

import pytest

from devices.errors import ScaleCommandError, ScaleConnectionError, ScaleTimeout
from devices.mtsics import MtSicsScale, ScaleSettings
from devices.scale_sim import ScaleControl, ScaleSimulator

TIMEOUT_S = 0.5


@pytest.fixture
def sim() -> Iterator[ScaleSimulator]:
    simulator = ScaleSimulator(late_s=TIMEOUT_S + 0.3)
    simulator.set_weight("1200.00")
    yield simulator
    simulator.close()


@pytest.fixture
def control(sim: ScaleSimulator) -> ScaleControl:
    return ScaleControl(f"127.0.0.1:{sim.serve_control()}")


@pytest.fixture(params=["pty", "tcp"])
def scale(request: pytest.FixtureRequest, sim: ScaleSimulator) -> Iterator[MtSicsScale]:
    url = sim.serve_pty() if request.param == "pty" else f"socket://127.0.0.1:{sim.serve_tcp()}"
    with MtSicsScale(ScaleSettings(url, timeout_s=TIMEOUT_S, name="SCALE-01")) as client:
        yield client


def within_timeout(started: float) -> bool:
    return time.monotonic() - started < TIMEOUT_S + 1.0


def test_half_a_frame_is_a_timeout_showing_the_fragment(scale, control) -> None:
    control.set_fault("half")
    started = time.monotonic()

    with pytest.raises(ScaleTimeout, match=r"got only b'S S    1'\)"):
        scale.stable_weight(settle_timeout_s=0.1)
    assert within_timeout(started)


def test_garbage_is_a_command_error_not_a_weight(scale, control) -> None:
    control.set_fault("garbage")

    with pytest.raises(ScaleCommandError) as raised:
        scale.stable_weight(settle_timeout_s=0.1)
    assert "SCALE-01" in str(raised.value)


def test_a_late_reply_times_out_and_the_next_answer_is_the_right_one(scale, control) -> None:
    control.set_fault("late")
    started = time.monotonic()
    with pytest.raises(ScaleTimeout):
        scale.stable_weight(settle_timeout_s=0.1)
    assert within_timeout(started)

    control.set_fault(None)
    control.set_weight("7.00")
    time.sleep(0.5)  # the late answer (1200.00) lands in the client's input buffer

    assert scale.stable_weight().value == Decimal("7.00")


def test_a_disconnect_is_a_connection_error_over_tcp(sim, control) -> None:
    url = f"socket://127.0.0.1:{sim.serve_tcp()}"
    with MtSicsScale(ScaleSettings(url, timeout_s=TIMEOUT_S, name="SCALE-01")) as scale:
        assert scale.stable_weight().value == Decimal("1200.00")
        control.set_fault("disconnect")

        with pytest.raises(ScaleConnectionError, match=r"SCALE-01: connection .* lost"):
            scale.stable_weight(settle_timeout_s=0.1)


def test_the_control_channel_refuses_an_unknown_fault(control) -> None:
    with pytest.raises(Exception, match="unknown fault mode 'smoke'"):
        control.set_fault("smoke")
