"""Weighing through the MT-SICS client against the simulator, over a pty and over TCP."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal

import pytest

from devices.errors import ScaleUnstable
from devices.line_transport import LineHandler
from devices.mtsics import MtSicsScale, ScaleSettings
from devices.scale_sim import ScaleSimulator


class TestStableWeight:
    def test_returns_value_unit_and_the_frame_as_sent(
        self, scale: MtSicsScale, scale_sim: ScaleSimulator
    ) -> None:
        scale_sim.set_weight("1200.00")

        reading = scale.stable_weight()

        assert reading.value == Decimal("1200.00")
        assert reading.unit == "g"
        assert reading.stable is True
        assert reading.raw_frames == ("S S    1200.00 g",)

    def test_keeps_the_scales_resolution(
        self, scale: MtSicsScale, scale_sim: ScaleSimulator
    ) -> None:
        scale_sim.set_weight("1200")

        value = scale.stable_weight().value

        assert str(value) == "1200.00"
        assert value.as_tuple().exponent == -2

    def test_reads_negative_weights_below_zero(
        self, scale: MtSicsScale, scale_sim: ScaleSimulator
    ) -> None:
        scale_sim.set_weight("-12.5")

        assert scale.stable_weight().value == Decimal("-12.50")

    def test_motion_until_the_timeout_raises_unstable(
        self, scale: MtSicsScale, scale_sim: ScaleSimulator
    ) -> None:
        scale_sim.set_stable(False)
        started = time.monotonic()

        with pytest.raises(ScaleUnstable, match=r"SCALE-01 did not settle within 0\.3 s"):
            scale.stable_weight(settle_timeout_s=0.3)

        assert 0.3 <= time.monotonic() - started < 1.0

    def test_settling_mid_wait_returns_the_stable_weight_with_the_dynamic_frames(
        self, scale: MtSicsScale, scale_sim: ScaleSimulator
    ) -> None:
        scale_sim.set_weight("250.10")
        scale_sim.set_stable(False)
        settle = threading.Timer(0.25, scale_sim.set_stable, args=(True,))
        settle.start()
        try:
            reading = scale.stable_weight(settle_timeout_s=3.0)
        finally:
            settle.cancel()

        assert reading.stable is True
        assert reading.value == Decimal("250.10")
        assert len(reading.raw_frames) >= 2
        assert all(frame.startswith("S D") for frame in reading.raw_frames[:-1])
        assert reading.raw_frames[-1] == "S S     250.10 g"

    def test_busy_answers_are_retried_until_stable(
        self, scripted_scale: Callable[[LineHandler], MtSicsScale]
    ) -> None:
        answers = iter(["S I", "S I", "S S      10.00 g"])
        scale = scripted_scale(lambda _line: next(answers))

        reading = scale.stable_weight(settle_timeout_s=2.0)

        assert reading.raw_frames == ("S I", "S I", "S S      10.00 g")
        assert reading.value == Decimal("10.00")


class TestImmediateWeight:
    def test_reports_a_stable_weight_as_stable(
        self, scale: MtSicsScale, scale_sim: ScaleSimulator
    ) -> None:
        scale_sim.set_weight("5.25")

        reading = scale.immediate_weight()

        assert (reading.value, reading.stable) == (Decimal("5.25"), True)

    def test_reports_a_weight_in_motion_without_waiting(
        self, scale: MtSicsScale, scale_sim: ScaleSimulator
    ) -> None:
        scale_sim.set_weight("99.99")
        scale_sim.set_stable(False)

        reading = scale.immediate_weight()

        assert (reading.value, reading.stable) == (Decimal("99.99"), False)
        assert reading.raw_frames == ("S D      99.99 g",)

    def test_accepts_devices_that_echo_the_command(self) -> None:
        sim = ScaleSimulator(echo_si=True)
        try:
            sim.set_weight("42.00")
            with MtSicsScale(ScaleSettings(sim.serve_pty(), timeout_s=0.5)) as scale:
                reading = scale.immediate_weight()
        finally:
            sim.close()

        assert reading.value == Decimal("42.00")
        assert reading.raw_frames == ("SI S      42.00 g",)
