"""The simulated-devices process: publishes where the devices listen, cleans up on stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from devices.cooker_tags import COOKER_TAGS
from devices.dryer_tags import DRYER_TAGS
from devices.errors import DeviceConnectionError
from devices.modbus_plc import MixerPlc, PlcSettings
from devices.mtsics import MtSicsScale, ScaleSettings
from devices.plc import ModbusPlc
from devices.scale_sim import ScaleControl
from devices.simulators import ScaleSpec, read_state, run_simulators

REPO = Path(__file__).resolve().parents[2]
# pyserial 3.5's RFC 2217 client uses threading calls Python deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings(r"ignore:set(Daemon|Name)\(\) is deprecated")


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Path, dict[str, object], threading.Thread]]:
    state_file = tmp_path / "devices.json"
    stop = threading.Event()
    thread = threading.Thread(
        target=run_simulators, args=(state_file,), kwargs={"stop": stop}, daemon=True
    )
    thread.start()
    state = read_state(state_file, wait_s=5.0)
    yield state_file, state, thread
    stop.set()
    thread.join(timeout=5.0)


class TestStateFile:
    def test_publishes_every_address_and_the_pid(
        self, running: tuple[Path, dict[str, object], threading.Thread]
    ) -> None:
        _, state, _ = running

        assert set(state) == {
            "scale_port",
            "scale_url",
            "scale_rfc2217",
            "scale_control",
            "plc_host",
            "plc_port",
            "cooker_host",
            "cooker_port",
            "dryer_host",
            "dryer_port",
            "scales",
            "time_scale",
            "pid",
        }
        assert str(state["scale_port"]).startswith("/dev/pts/")
        assert str(state["scale_url"]).startswith("socket://127.0.0.1:")
        assert state["plc_host"] == "127.0.0.1"
        assert state["pid"] == os.getpid()

    def test_the_published_devices_answer(
        self, running: tuple[Path, dict[str, object], threading.Thread]
    ) -> None:
        _, state, _ = running
        ScaleControl(str(state["scale_control"])).set_weight("321.00")

        for key in ("scale_port", "scale_url", "scale_rfc2217"):
            url = str(state[key])
            with MtSicsScale(ScaleSettings(url, timeout_s=0.5)) as scale:
                assert scale.stable_weight().value == Decimal("321.00")
        settings = PlcSettings(str(state["plc_host"]), int(str(state["plc_port"])))
        with MixerPlc(settings) as plc:
            assert plc.start(1000, 180).running is True
        cooker = PlcSettings(str(state["cooker_host"]), int(str(state["cooker_port"])))
        with ModbusPlc(cooker, tags=COOKER_TAGS) as plc:
            assert plc.write_setpoint("setpoint_temp", "75") == Decimal("75")
            assert plc.read_tag("heating") is True
        dryer = PlcSettings(str(state["dryer_host"]), int(str(state["dryer_port"])))
        with ModbusPlc(dryer, tags=DRYER_TAGS) as plc:
            assert plc.write_setpoint("air_flow_setpoint", "120") == 120
            assert plc.read_tag("air_flow") == 120

    def test_further_scales_answer_with_their_own_serial_unit_and_readability(
        self, tmp_path: Path
    ) -> None:
        state_file = tmp_path / "devices.json"
        stop = threading.Event()
        floor = ScaleSpec(serial_number="B323456789", capacity=Decimal(150), decimals=2,
                          unit="kg")
        thread = threading.Thread(target=run_simulators, args=(state_file,),
                                  kwargs={"stop": stop, "scales": [floor]}, daemon=True)
        thread.start()
        try:
            own = read_state(state_file, wait_s=5.0)["scales"]["B323456789"]
            ScaleControl(own["scale_control"]).set_weight("76.004")

            with MtSicsScale(ScaleSettings(own["scale_port"], timeout_s=0.5)) as scale:
                assert scale.identity().serial_number == "B323456789"
                reading = scale.stable_weight()
            assert (reading.value, reading.unit) == (Decimal("76.00"), "kg")
        finally:
            stop.set()
            thread.join(timeout=5.0)

    def test_stop_closes_the_devices_and_removes_the_state_file(self, tmp_path: Path) -> None:
        state_file = tmp_path / "devices.json"
        stop = threading.Event()
        thread = threading.Thread(
            target=run_simulators, args=(state_file,), kwargs={"stop": stop}, daemon=True
        )
        thread.start()
        plc_port = int(str(read_state(state_file, wait_s=5.0)["plc_port"]))

        stop.set()
        thread.join(timeout=5.0)

        assert not thread.is_alive()
        assert not state_file.exists()
        with pytest.raises(DeviceConnectionError):
            MixerPlc(PlcSettings("127.0.0.1", plc_port, timeout_s=0.5)).status()

    def test_waiting_for_a_state_file_that_never_comes_fails_clearly(self, tmp_path: Path) -> None:
        with pytest.raises(DeviceConnectionError, match=r"did not publish .* within 0\.1 s"):
            read_state(tmp_path / "missing.json", wait_s=0.1)


class TestAsAProcess:
    def test_sigterm_stops_it_and_removes_the_state_file(self, tmp_path: Path) -> None:
        state_file = tmp_path / "devices.json"
        process = subprocess.Popen(
            [sys.executable, "-m", "devices.simulators", str(state_file)], cwd=REPO
        )
        try:
            assert read_state(state_file, wait_s=10.0)["pid"] == process.pid

            process.send_signal(signal.SIGTERM)

            assert process.wait(timeout=5.0) == 0
            assert not state_file.exists()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


class TestDryer:
    def test_the_inlet_air_heats_toward_its_setpoint_and_the_plc_refuses_out_of_limits(
        self,
    ) -> None:
        import dataclasses

        from devices.dryer_sim import DryerSimulator
        from devices.plc import PlcError

        # The client's copy of the map without limits: the PLC itself must refuse 95 degC.
        unchecked = {**DRYER_TAGS, "inlet_temp_setpoint": dataclasses.replace(
            DRYER_TAGS["inlet_temp_setpoint"], maximum=None)}
        clock = [0.0]
        dryer = DryerSimulator(time_scale=1.0, tau_s=60.0, clock=lambda: clock[0])
        port = dryer.start("127.0.0.1", 0)
        try:
            with ModbusPlc(PlcSettings("127.0.0.1", port), tags=unchecked) as plc:
                assert plc.write_setpoint("inlet_temp_setpoint", "60") == Decimal("60")
                clock[0] = 60.0  # one time constant: 63 % of the way from 20 to 60 degC
                assert plc.read_tag("inlet_temp") == Decimal("45.3")
                with pytest.raises(PlcError, match="Modbus exception 3"):
                    plc.write_setpoint("inlet_temp_setpoint", "95")
        finally:
            dryer.close()
