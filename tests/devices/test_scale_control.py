"""The simulator's control channel: another process puts material on the scale."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from decimal import Decimal

import pytest

from devices.errors import DeviceConnectionError, DeviceError, ScaleCommandError
from devices.mtsics import MtSicsScale, ScaleSettings
from devices.scale_sim import ScaleControl, ScaleSimulator


@pytest.fixture
def control_address(scale_sim: ScaleSimulator) -> str:
    return f"127.0.0.1:{scale_sim.serve_control()}"


@pytest.fixture
def pty_scale(scale_sim: ScaleSimulator) -> Iterator[MtSicsScale]:
    with MtSicsScale(ScaleSettings(scale_sim.serve_pty(), timeout_s=0.5)) as scale:
        yield scale


def raw_request(address: str, line: bytes) -> dict[str, object]:
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=2) as sock:
        sock.sendall(line)
        answer = sock.makefile("rb").readline()
    return json.loads(answer)


class TestControlledState:
    def test_weight_set_through_the_channel_is_what_the_scale_reads(
        self, control_address: str, pty_scale: MtSicsScale
    ) -> None:
        state = ScaleControl(control_address).set_weight(Decimal("1200.00"))

        assert state["weight"] == "1200.00"
        assert pty_scale.stable_weight().value == Decimal("1200.00")

    def test_instability_set_through_the_channel_shows_as_motion(
        self, control_address: str, pty_scale: MtSicsScale
    ) -> None:
        ScaleControl(control_address).set_stable(False)

        assert pty_scale.immediate_weight().stable is False

    def test_fault_set_through_the_channel_makes_the_scale_answer_errors(
        self, control_address: str, pty_scale: MtSicsScale
    ) -> None:
        ScaleControl(control_address).set_fault("EL")

        with pytest.raises(ScaleCommandError) as raised:
            pty_scale.zero()
        assert raised.value.code == "EL"

    def test_state_reports_the_whole_simulator(self, control_address: str) -> None:
        control = ScaleControl(control_address)
        control.set_weight("75.5")

        state = control.state()

        assert state == {
            "ok": True,
            "weight": "75.5",
            "net": "75.50",
            "tare": "0.00",
            "unit": "g",
            "stable": True,
            "fault": None,
            "capacity": "6000.00",
            "model": "XS6002S",
            "serial_number": "B123456789",
        }


class TestBadRequests:
    def test_a_weight_that_is_not_a_number_is_refused(self, control_address: str) -> None:
        with pytest.raises(DeviceError, match="refused set_weight: weight 'lots'"):
            ScaleControl(control_address).set_weight("lots")

    def test_an_unknown_fault_mode_is_refused(self, control_address: str) -> None:
        with pytest.raises(DeviceError, match="unknown fault mode 'smoke'"):
            ScaleControl(control_address).set_fault("smoke")

    @pytest.mark.parametrize(
        ("line", "error"),
        [
            (b"not json\n", "Expecting value"),
            (b'["state"]\n', "JSON object"),
            (b'{"cmd": "explode"}\n', "unknown cmd 'explode'"),
            (b'{"cmd": "set_stable", "stable": "yes"}\n', "true or false"),
        ],
    )
    def test_malformed_lines_get_an_error_answer(
        self, control_address: str, line: bytes, error: str
    ) -> None:
        answer = raw_request(control_address, line)

        assert answer["ok"] is False
        assert error in str(answer["error"])

    def test_no_simulator_listening_is_a_connection_error(self, free_port: int) -> None:
        with pytest.raises(DeviceConnectionError, match="start the simulated devices"):
            ScaleControl(f"127.0.0.1:{free_port}").state()

    def test_an_address_without_a_port_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="host:port"):
            ScaleControl("localhost")
