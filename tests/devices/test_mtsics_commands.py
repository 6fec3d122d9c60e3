"""Identity, zero and tare through the MT-SICS client against the simulator."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from devices.errors import ScaleOverload, ScaleUnderload, ScaleUnstable
from devices.line_transport import LineHandler
from devices.mtsics import MtSicsScale, ScaleIdentity
from devices.scale_sim import ScaleSimulator


class TestIdentity:
    def test_reads_model_and_serial_number(self, scale: MtSicsScale) -> None:
        assert scale.identity() == ScaleIdentity(model="XS6002S", serial_number="B123456789")

    def test_accepts_multi_line_and_split_field_answers(
        self, scripted_scale: Callable[[LineHandler], MtSicsScale]
    ) -> None:
        answers = {
            "I2": 'I2 B "booting"\r\nI2 A "WXS205" "220.00 g"',
            "I4": 'I4 A "1234567"',
        }
        scale = scripted_scale(lambda line: answers[line])

        assert scale.identity() == ScaleIdentity(model="WXS205", serial_number="1234567")


class TestTare:
    def test_tare_returns_the_stored_tare_and_nets_later_readings(
        self, scale: MtSicsScale, scale_sim: ScaleSimulator
    ) -> None:
        scale_sim.set_weight("150.00")  # the empty container

        tare = scale.tare()
        scale_sim.set_weight("1350.00")  # container plus material

        assert (tare.value, tare.raw_frames) == (Decimal("150.00"), ("T S     150.00 g",))
        assert scale.stable_weight().value == Decimal("1200.00")

    def test_clear_tare_shows_the_gross_weight_again(
        self, scale: MtSicsScale, scale_sim: ScaleSimulator
    ) -> None:
        scale_sim.set_weight("150.00")
        scale.tare()

        scale.clear_tare()

        assert scale.stable_weight().value == Decimal("150.00")

    def test_tare_while_in_motion_is_refused_as_unstable(
        self, scale: MtSicsScale, scale_sim: ScaleSimulator
    ) -> None:
        scale_sim.set_stable(False)

        with pytest.raises(ScaleUnstable, match="could not tare"):
            scale.tare()

    def test_a_negative_load_cannot_be_tared(
        self, scale: MtSicsScale, scale_sim: ScaleSimulator
    ) -> None:
        scale_sim.set_weight("-5")

        with pytest.raises(ScaleUnderload, match="zero the empty scale first"):
            scale.tare()


class TestZero:
    def test_zero_takes_the_current_load_as_zero_and_clears_the_tare(
        self, scale: MtSicsScale, scale_sim: ScaleSimulator
    ) -> None:
        scale_sim.set_weight("20.00")
        scale.tare()
        scale_sim.set_weight("30.00")

        scale.zero()

        assert scale.stable_weight().value == Decimal("0.00")
        assert scale_sim.state()["tare"] == "0.00"

    def test_zero_with_a_load_on_the_pan_is_refused(
        self, scale: MtSicsScale, scale_sim: ScaleSimulator
    ) -> None:
        scale_sim.set_weight("500")

        with pytest.raises(ScaleOverload, match="empty the pan, then zero"):
            scale.zero()

    def test_zero_while_in_motion_is_refused_as_unstable(
        self, scale: MtSicsScale, scale_sim: ScaleSimulator
    ) -> None:
        scale_sim.set_stable(False)

        with pytest.raises(ScaleUnstable, match="could not zero"):
            scale.zero()
