"""The stack's register: which file, simulator and settings addresses, binding by class."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path

import pytest

from recipes.plan import EquipmentRequirement
from runtime.equipment import EquipmentError, load_register
from settings.config import Settings
from tests.sample_plan import PLAN

SITE = """\
ebr_equipment: 1
equipment:
  SCALE-OLD:
    class: scale
    driver: mt-sics
    connection: {url: /dev/ttyUSB0}
    serial_number: A1
    calibration_due: 2026-01-31
    cleaning: {status: clean, cleaned_at: 2026-01-02T08:00:00Z}
  SCALE-DIRTY:
    class: scale
    driver: mt-sics
    connection: {url: /dev/ttyUSB1}
    serial_number: A2
    calibration_due: 2027-01-31
    cleaning: {status: dirty}
  SCALE-GOOD:
    class: scale
    driver: mt-sics
    connection: {url: /dev/ttyUSB2}
    serial_number: A3
    calibration_due: 2027-01-31
    cleaning: {status: clean, cleaned_at: 2026-01-02T08:00:00Z}
  MIXER-01:
    class: mixer
    driver: modbus-tcp
    connection: {host: 10.0.0.9}
    tag_map: mixer
    cleaning: {status: clean, cleaned_at: 2026-01-02T08:00:00Z}
"""


def settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(var_dir=tmp_path, env="test", _env_file=None, **kw)  # type: ignore[arg-type]


def publish_simulators(tmp_path: Path) -> None:
    state = settings(tmp_path).devices_state_file
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"scale_port": "/dev/pts/7", "plc_host": "127.0.0.1",
                                 "plc_port": 5555}))


def test_default_register_follows_the_running_simulators(tmp_path: Path):
    register = load_register(settings(tmp_path))
    publish_simulators(tmp_path)  # read at use, not at load: a restarted simulator is found
    assert register.scale("SCALE-01").url == "/dev/pts/7"
    assert (register.mixer("MIXER-01").host, register.mixer("MIXER-01").port) == (
        "127.0.0.1", 5555,
    )


def test_settings_addresses_replace_the_simulators(tmp_path: Path):
    publish_simulators(tmp_path)
    register = load_register(
        settings(tmp_path, scale_url="socket://10.9.9.9:4001", plc_host="10.9.9.8", plc_port=1502)
    )
    assert register.scale("SCALE-01").url == "socket://10.9.9.9:4001"
    assert (register.mixer("MIXER-01").host, register.mixer("MIXER-01").port) == (
        "10.9.9.8", 1502,
    )


def test_binding_skips_overdue_and_dirty_equipment(tmp_path: Path):
    (tmp_path / "equipment.yaml").write_text(SITE)
    register = load_register(settings(tmp_path))
    binding = register.bind(PLAN, today=date(2026, 3, 1))
    assert binding == {"scale": "SCALE-GOOD", "mixer": "MIXER-01"}


def test_binding_refuses_with_every_reason_when_nothing_fits(tmp_path: Path):
    (tmp_path / "equipment.yaml").write_text(SITE)
    register = load_register(settings(tmp_path))
    with pytest.raises(EquipmentError) as info:
        register.bind(PLAN, today=date(2027, 2, 1))
    message = str(info.value)
    assert "No usable scale for the recipe role 'scale'" in message
    assert "SCALE-OLD must not be used: its calibration was due on 2026-01-31" in message
    assert "SCALE-DIRTY must not be used" in message and "dirty" in message


def test_binding_refuses_a_class_nobody_registered(tmp_path: Path):
    plan = dataclasses.replace(PLAN, equipment=[EquipmentRequirement("fill", "filler")])
    has = "has: cooker, fluid-bed-dryer, mixer, scale"
    with pytest.raises(EquipmentError, match=rf"No filler is registered.*{has}"):
        load_register(settings(tmp_path)).bind(plan)
