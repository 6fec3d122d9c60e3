"""`ebr devices weigh` and `ebr devices plc read|write` against the simulators."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from devices.cooker_sim import CookerSimulator
from devices.plc_sim import MixerSimulator
from devices.scale_sim import ScaleSimulator

runner = CliRunner()


@pytest.fixture(autouse=True)
def isolated_var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`plc` reads the site register from EBR_VAR_DIR: never the checkout's var/."""
    monkeypatch.setenv("EBR_VAR_DIR", str(tmp_path))


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


@pytest.fixture
def cooker_address() -> Iterator[str]:
    sim = CookerSimulator(time_scale=1.0)
    yield f"127.0.0.1:{sim.start()}"
    sim.close()


@pytest.fixture
def site_register(tmp_path: Path) -> Path:
    """A site register with its own tag map and a cooker."""
    path = tmp_path / "equipment.yaml"
    path.write_text(
        "ebr_equipment: 1\n"
        "tag_maps:\n"
        "  kettle:\n"
        "    sp: {table: holding, address: 0, type: float32, word_order: little}\n"
        "equipment:\n"
        "  COOKER-07:\n"
        "    class: cooker\n"
        "    driver: modbus-tcp\n"
        "    connection: {host: 10.0.0.7}\n"
        "    tag_map: cooker\n"
        "    cleaning: {status: clean, cleaned_at: 2026-01-01T00:00:00Z}\n"
    )
    return path


def test_plc_reads_and_writes_a_cooker_with_the_built_in_map(
    cooker_address: str, site_register: Path
):
    written = runner.invoke(
        app, ["devices", "plc", "write", cooker_address, "setpoint_temp=75.5", "--tag-map",
              "cooker"],
    )
    assert written.exit_code == 0, written.output
    assert written.output.splitlines() == ["setpoint_temp=75.5"]
    read = runner.invoke(
        app, ["devices", "plc", "read", cooker_address, "setpoint_temp", "heating",
              "--equipment", "COOKER-07"],
    )
    assert read.exit_code == 0, read.output
    assert read.output.splitlines() == ["setpoint_temp=75.5", "heating=True"]


def test_plc_uses_the_site_registers_named_tag_maps(cooker_address: str, site_register: Path):
    result = runner.invoke(
        app, ["devices", "plc", "write", cooker_address, "sp=80", "--tag-map", "kettle"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["sp=80"]


def test_plc_write_refused_by_the_tag_exits_1_and_writes_nothing(
    cooker_address: str, site_register: Path
):
    refused = runner.invoke(
        app, ["devices", "plc", "write", cooker_address, "setpoint_temp=500", "--tag-map",
              "cooker"],
    )
    assert refused.exit_code == 1
    assert "setpoint_temp=500 degC is above its maximum 120 degC; nothing was written" in (
        refused.output
    )
    read = runner.invoke(
        app, ["devices", "plc", "read", cooker_address, "setpoint_temp", "--tag-map", "cooker"]
    )
    assert read.output.splitlines() == ["setpoint_temp=0"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["write", "127.0.0.1:1", "setpoint_temp"], "must look like TAG=VALUE"),
        (["read", "localhost", "core_temp"], "must look like HOST:PORT"),
        (["read", "127.0.0.1:1", "core_temp", "--tag-map", "oven"], "no tag map 'oven'"),
        (["read", "127.0.0.1:1", "x", "--equipment", "SCALE-01"], "not Modbus equipment"),
    ],
)
def test_plc_bad_arguments_exit_2_with_the_reason(site_register: Path, args, message):
    result = runner.invoke(app, ["devices", "plc", *args])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
