"""`ebr devices weigh` and `ebr devices plc read|write` against the simulators."""

from __future__ import annotations

from typer.testing import CliRunner

from cli.main import app
from devices.plc_sim import MixerSimulator
from devices.scale_sim import ScaleSimulator

runner = CliRunner()


def test_weigh_prints_value_unit_and_the_raw_frame(scale_sim: ScaleSimulator):
    scale_sim.set_weight("1200.40")
    url = f"socket://127.0.0.1:{scale_sim.serve_tcp()}"
    result = runner.invoke(app, ["devices", "weigh", url, "--timeout", "0.5"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["1200.40 g", "raw: 'S S    1200.40 g'"]


def test_weigh_on_a_silent_scale_exits_non_zero_with_the_driver_message(scale_sim):
    scale_sim.set_fault("silent")
    url = f"socket://127.0.0.1:{scale_sim.serve_tcp()}"
    result = runner.invoke(app, ["devices", "weigh", url, "--timeout", "0.3", "--settle", "0.3"])
    assert result.exit_code == 1
    assert "did not answer 'S'" in result.output and "Traceback" not in result.output


def test_plc_write_reads_back_and_read_prints_tags(mixer_sim: MixerSimulator):
    address = f"127.0.0.1:{mixer_sim.start()}"
    written = runner.invoke(
        app, ["devices", "plc", "write", address, "speed_setpoint_rpm=25", "duration_setpoint_s=90"]
    )
    assert written.exit_code == 0, written.output
    assert written.output.splitlines() == ["speed_setpoint_rpm=25", "duration_setpoint_s=90"]
    read = runner.invoke(
        app, ["devices", "plc", "read", address, "duration_setpoint_s", "complete"]
    )
    assert read.output.splitlines() == ["duration_setpoint_s=90", "complete=False"]


def test_plc_refusals_and_unknown_tags_exit_non_zero(mixer_sim: MixerSimulator):
    address = f"127.0.0.1:{mixer_sim.start()}"
    refused = runner.invoke(app, ["devices", "plc", "write", address, "speed_setpoint_rpm=5000"])
    assert refused.exit_code == 1 and "Modbus exception 3" in refused.output
    unknown = runner.invoke(app, ["devices", "plc", "read", address, "core_temp"])
    assert unknown.exit_code == 1 and "No tag 'core_temp'" in unknown.output


def test_plc_on_a_closed_port_exits_non_zero(free_port: int):
    result = runner.invoke(app, ["devices", "plc", "read", f"127.0.0.1:{free_port}", "complete"])
    assert result.exit_code == 1 and "not reachable" in result.output
