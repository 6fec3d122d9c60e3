"""The equipment register of the one-machine stack: one scale and one mixer.

Issue #6 replaces this with a YAML register; the shape (id -> class and
connection, and binding recipe roles by class) stays.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from devices.modbus_plc import PlcSettings
from devices.mtsics import ScaleSettings
from recipes.plan import BatchPlan
from settings.config import Settings


class EquipmentError(Exception):
    pass


@dataclass(frozen=True)
class Equipment:
    equipment_id: str
    equipment_class: str


@dataclass(frozen=True)
class EquipmentRegister:
    scales: dict[str, ScaleSettings]
    mixers: dict[str, PlcSettings]

    def all(self) -> list[Equipment]:
        return [Equipment(i, "scale") for i in self.scales] + [
            Equipment(i, "mixer") for i in self.mixers
        ]

    def bind(self, plan: BatchPlan) -> dict[str, str]:
        """Bind each recipe role to the first registered equipment of its class."""
        binding: dict[str, str] = {}
        for req in plan.equipment:
            match = next((e for e in self.all() if e.equipment_class == req.equipment_class), None)
            if match is None:
                raise EquipmentError(
                    f"No {req.equipment_class} is registered for the recipe role '{req.role}'."
                )
            binding[req.role] = match.equipment_id
        return binding

    def scale(self, equipment_id: str) -> ScaleSettings:
        if equipment_id not in self.scales:
            raise EquipmentError(f"{equipment_id} is not a registered scale.")
        return self.scales[equipment_id]

    def mixer(self, equipment_id: str) -> PlcSettings:
        if equipment_id not in self.mixers:
            raise EquipmentError(f"{equipment_id} is not a registered mixer PLC.")
        return self.mixers[equipment_id]


def load_register(settings: Settings) -> EquipmentRegister:
    """Settings name the devices; otherwise the running simulators' state file does."""
    sim = _simulator_state(settings.devices_state_file)
    scale_url = settings.scale_url or sim.get("scale_port")
    plc_host = settings.plc_host or sim.get("plc_host")
    plc_port = settings.plc_port if settings.plc_host else int(sim.get("plc_port", 502))
    scales = {"SCALE-01": ScaleSettings(url=scale_url, name="SCALE-01")} if scale_url else {}
    mixers = {"MIXER-01": PlcSettings(host=plc_host, port=plc_port)} if plc_host else {}
    return EquipmentRegister(scales=scales, mixers=mixers)


def _simulator_state(path: Path) -> dict[str, str]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
