"""Running the mixer through the Modbus driver against the PLC simulator on loopback."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from devices.errors import PlcError
from devices.modbus_plc import MixerPlc, MixerStatus


class TestStart:
    def test_start_writes_the_setpoints_and_runs_at_the_setpoint_speed(self, plc: MixerPlc) -> None:
        status = plc.start(1200, 180)

        assert status.running is True
        assert status.complete is False
        assert (status.setpoint_rpm, status.setpoint_s) == (1200, 180)
        assert status.speed_rpm == 1200

    def test_status_while_running_counts_simulated_seconds(
        self, plc: MixerPlc, wait_until: Callable[..., bool]
    ) -> None:
        plc.start(800, 600)

        assert wait_until(lambda: plc.status().elapsed_s >= 5)
        status = plc.status()
        assert status.running is True
        assert status.speed_rpm == 800
        assert 5 <= status.elapsed_s < 600

    def test_a_repeated_start_with_the_same_setpoints_leaves_the_run_alone(
        self, plc: MixerPlc, wait_until: Callable[..., bool]
    ) -> None:
        plc.start(1000, 600)
        assert wait_until(lambda: plc.status().elapsed_s >= 3)

        again = plc.start(1000, 600)

        assert again.running is True
        assert again.elapsed_s >= 3  # a restart would have reset the PLC's counter

    def test_start_with_other_setpoints_while_running_is_refused(self, plc: MixerPlc) -> None:
        plc.start(1000, 600)

        with pytest.raises(PlcError, match="already running a mix at 1000 rpm for 600 s"):
            plc.start(1500, 600)

        assert plc.status().setpoint_rpm == 1000


class TestCompletion:
    def test_the_plc_stops_and_flags_complete_after_the_duration(
        self, plc: MixerPlc, wait_until: Callable[..., bool]
    ) -> None:
        plc.start(1200, 2)  # 2 simulated seconds at 50x: 40 ms

        assert wait_until(lambda: plc.status().complete)
        assert plc.status() == MixerStatus(
            running=False,
            complete=True,
            speed_rpm=0,
            elapsed_s=2,
            setpoint_rpm=1200,
            setpoint_s=2,
        )

    def test_a_new_start_clears_complete_and_elapsed(
        self, plc: MixerPlc, wait_until: Callable[..., bool]
    ) -> None:
        plc.start(1200, 2)
        assert wait_until(lambda: plc.status().complete)

        status = plc.start(1200, 600)

        assert (status.running, status.complete, status.elapsed_s) == (True, False, 0)

    def test_a_retried_start_of_a_completed_step_does_not_mix_again(
        self, plc: MixerPlc, wait_until: Callable[..., bool]
    ) -> None:
        plc.start(1200, 2, step_token=4711)
        assert wait_until(lambda: plc.status().complete)

        status = plc.start(1200, 2, step_token=4711)

        assert (status.running, status.complete, status.step_token) == (False, True, 4711)


class TestStop:
    def test_stop_clears_the_run_and_keeps_the_counters(
        self, plc: MixerPlc, wait_until: Callable[..., bool]
    ) -> None:
        plc.start(900, 600)
        assert wait_until(lambda: plc.status().elapsed_s >= 2)

        status = plc.stop()

        assert (status.running, status.complete, status.speed_rpm) == (False, False, 0)
        assert status.elapsed_s >= 2

    def test_stop_when_idle_is_harmless(self, plc: MixerPlc) -> None:
        status = plc.stop()

        assert (status.running, status.complete) == (False, False)
