"""The MT-SICS driver over pyserial's rfc2217:// URL, against an RFC 2217 server (a
serial device server) in front of the simulated scale's pseudo-terminal."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from devices.errors import ScaleConnectionError, ScaleTimeout, ScaleUnstable
from devices.mtsics import MtSicsScale, ScaleSettings
from devices.scale_sim import ScaleSimulator

TIMEOUT_S = 0.5
# pyserial 3.5's RFC 2217 client uses threading calls Python deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings(r"ignore:set(Daemon|Name)\(\) is deprecated")


@pytest.fixture
def rfc2217_url(scale_sim: ScaleSimulator) -> str:
    return f"rfc2217://127.0.0.1:{scale_sim.serve_rfc2217()}"


@pytest.fixture
def remote_scale(rfc2217_url: str) -> Iterator[MtSicsScale]:
    # Line settings other than the defaults: the client negotiates them with the server.
    settings = ScaleSettings(
        rfc2217_url, baudrate=19200, parity="E", bytesize=7, timeout_s=TIMEOUT_S,
        name="SCALE-01",
    )  # fmt: skip
    with MtSicsScale(settings) as scale:
        yield scale


def test_identity_and_a_stable_weight_come_through_the_device_server(
    remote_scale: MtSicsScale, scale_sim: ScaleSimulator
) -> None:
    scale_sim.set_weight("1200.40")

    assert remote_scale.identity().serial_number == "B123456789"
    reading = remote_scale.stable_weight(settle_timeout_s=1.0)
    assert (reading.value, reading.unit, reading.raw_frames) == (
        Decimal("1200.40"), "g", ("S S    1200.40 g",),
    )  # fmt: skip


def test_zero_tare_and_clear_tare_work_remotely(
    remote_scale: MtSicsScale, scale_sim: ScaleSimulator
) -> None:
    scale_sim.set_weight("250.00")
    assert remote_scale.tare().value == Decimal("250.00")
    scale_sim.set_weight("300.00")
    assert remote_scale.immediate_weight().value == Decimal("50.00")
    remote_scale.clear_tare()
    assert remote_scale.immediate_weight().value == Decimal("300.00")
    scale_sim.set_weight("0.00")
    remote_scale.zero()
    assert remote_scale.immediate_weight().value == Decimal("0.00")


def test_an_unstable_load_is_refused(remote_scale: MtSicsScale, scale_sim: ScaleSimulator):
    scale_sim.set_stable(False)

    with pytest.raises(ScaleUnstable):
        remote_scale.stable_weight(settle_timeout_s=0.3)


def test_a_silent_scale_behind_the_server_times_out(
    remote_scale: MtSicsScale, scale_sim: ScaleSimulator
) -> None:
    scale_sim.set_fault("silent")

    with pytest.raises(ScaleTimeout, match=r"did not answer 'S' within"):
        remote_scale.stable_weight(settle_timeout_s=0.3)


def test_the_port_can_be_opened_again_after_a_client_closed_it(
    rfc2217_url: str, scale_sim: ScaleSimulator
) -> None:
    scale_sim.set_weight("5.00")
    for _ in range(2):
        with MtSicsScale(ScaleSettings(rfc2217_url, timeout_s=TIMEOUT_S)) as scale:
            assert scale.stable_weight().value == Decimal("5.00")


def test_a_device_server_that_is_gone_is_a_connection_error(free_port: int) -> None:
    scale = MtSicsScale(ScaleSettings(f"rfc2217://127.0.0.1:{free_port}", timeout_s=TIMEOUT_S))

    with pytest.raises(ScaleConnectionError, match=r"cannot open rfc2217://"):
        scale.stable_weight()
