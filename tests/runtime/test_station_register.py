"""A station worker's view of the register: only its own equipment, and a clear refusal
when the register names no such station."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from devices.register import UnknownEquipment
from runtime.equipment import StationError, load_register
from settings.config import Settings

SITE = """\
ebr_equipment: 1
equipment:
  SCALE-A:
    class: scale
    driver: mt-sics
    connection: {url: "socket://127.0.0.1:1"}
    serial_number: A1
    calibration_due: 2099-01-31
    cleaning: {status: clean, cleaned_at: 2026-01-02T08:00:00Z}
    station: booth-1
  SCALE-B:
    class: scale
    driver: mt-sics
    connection: {url: "socket://127.0.0.1:2"}
    serial_number: B1
    calibration_due: 2099-01-31
    cleaning: {status: clean, cleaned_at: 2026-01-02T08:00:00Z}
    station: booth-2
  MIXER-01:
    class: mixer
    driver: modbus-tcp
    connection: {host: 127.0.0.1}
    tag_map: mixer
    cleaning: {status: clean, cleaned_at: 2026-01-02T08:00:00Z}
"""


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    (tmp_path / "equipment.yaml").write_text(SITE)
    monkeypatch.setenv("EBR_VAR_DIR", str(tmp_path))
    return Settings(var_dir=tmp_path)


def test_a_station_sees_only_its_own_equipment(settings: Settings) -> None:
    station = load_register(settings).for_station("booth-1")

    assert station.scale("SCALE-A").url == "socket://127.0.0.1:1"
    with pytest.raises(UnknownEquipment, match=r"SCALE-B is not in .*station booth-1.*SCALE-A"):
        station.open_scale("SCALE-B")
    with pytest.raises(UnknownEquipment, match="MIXER-01 is not in"):
        station.open_mixer("MIXER-01")


def test_the_binding_routes_station_equipment_to_its_queue(settings: Settings) -> None:
    register = load_register(settings)

    queues = register.task_queues({"dispense": "SCALE-B", "blend": "MIXER-01"})

    assert queues == {"SCALE-B": "ebr-station-booth-2"}


def test_a_station_nobody_registered_is_refused_with_the_known_stations(
    settings: Settings,
) -> None:
    with pytest.raises(StationError, match=r"station: booth-9.*named there: booth-1, booth-2"):
        load_register(settings).for_station("booth-9")


def test_the_station_worker_command_exits_2_when_the_station_is_unknown(
    settings: Settings,
) -> None:
    result = CliRunner().invoke(app, ["worker", "--station", "booth-9"])

    assert result.exit_code == 2
    assert "No equipment in the register" in result.output
    assert "Traceback" not in result.output
