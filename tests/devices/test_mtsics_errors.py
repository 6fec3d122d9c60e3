"""How the MT-SICS client reports scales that refuse, misbehave or are not there."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from devices.errors import (
    DeviceConnectionError,
    ScaleCommandError,
    ScaleError,
    ScaleOverload,
    ScaleTimeout,
    ScaleUnderload,
)
from devices.line_transport import LineHandler
from devices.mtsics import MtSicsScale, ScaleSettings
from devices.scale_sim import ScaleSimulator


class TestRangeLimits:
    def test_load_above_capacity_is_an_overload(
        self, scale: MtSicsScale, scale_sim: ScaleSimulator
    ) -> None:
        scale_sim.set_weight("6000.01")

        with pytest.raises(ScaleOverload, match=r"SCALE-01 cannot weigh \('S \+'\)"):
            scale.stable_weight()

    def test_missing_pan_is_an_underload(
        self, scale: MtSicsScale, scale_sim: ScaleSimulator
    ) -> None:
        scale_sim.set_weight("-500")

        with pytest.raises(ScaleUnderload, match="pan is in place"):
            scale.immediate_weight()


class TestErrorAnswers:
    @pytest.mark.parametrize("code", ["ES", "ET", "EL"])
    def test_error_codes_raise_command_error_with_the_code(
        self, scale: MtSicsScale, scale_sim: ScaleSimulator, code: str
    ) -> None:
        scale_sim.set_fault(code)

        with pytest.raises(ScaleCommandError) as raised:
            scale.stable_weight()

        assert raised.value.code == code
        assert raised.value.raw == code
        assert "SCALE-01" in str(raised.value)

    def test_a_line_that_does_not_parse_names_the_raw_line(
        self, scripted_scale: Callable[[LineHandler], MtSicsScale]
    ) -> None:
        scale = scripted_scale(lambda _line: "S S twelve grams")

        with pytest.raises(ScaleCommandError, match="'S S twelve grams'") as raised:
            scale.stable_weight()

        assert raised.value.code is None

    def test_an_answer_to_another_command_is_rejected(
        self, scripted_scale: Callable[[LineHandler], MtSicsScale]
    ) -> None:
        scale = scripted_scale(lambda _line: "Z A")

        with pytest.raises(ScaleCommandError, match="expected an answer to 'S'"):
            scale.stable_weight()


class TestUnreachableScale:
    def test_silent_device_times_out(self, scale: MtSicsScale, scale_sim: ScaleSimulator) -> None:
        scale_sim.set_fault("silent")
        started = time.monotonic()

        with pytest.raises(ScaleTimeout, match=r"SCALE-01 did not answer 'SI' within 0\.5 s"):
            scale.immediate_weight()

        assert time.monotonic() - started < 1.5

    def test_the_scale_answers_again_after_a_timeout(
        self, scale: MtSicsScale, scale_sim: ScaleSimulator
    ) -> None:
        scale_sim.set_fault("silent")
        with pytest.raises(ScaleTimeout):
            scale.immediate_weight()

        scale_sim.set_fault(None)

        assert scale.identity().serial_number == "B123456789"

    def test_missing_serial_device_cannot_be_opened(self, tmp_path: Path) -> None:
        scale = MtSicsScale(ScaleSettings(str(tmp_path / "ttyUSB9"), name="SCALE-02"))

        with pytest.raises(DeviceConnectionError, match="SCALE-02: cannot open") as raised:
            scale.open()

        assert isinstance(raised.value, ScaleError)

    def test_refused_tcp_connection_cannot_be_opened(self, free_port: int) -> None:
        scale = MtSicsScale(ScaleSettings(f"socket://127.0.0.1:{free_port}"))

        with pytest.raises(DeviceConnectionError, match="check that the scale is connected"):
            scale.stable_weight()
