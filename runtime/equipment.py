"""The equipment register as the worker and the API use it.

The register itself (YAML, validation, connections, fitness for use) lives in
`devices/register.py`. This module chooses the file, wires the simulators' state file
and the `EBR_SCALE_URL` / `EBR_PLC_*` settings in, and binds a recipe's equipment roles.

Which file: `<EBR_VAR_DIR>/equipment.yaml` when it exists (the site's register),
otherwise the one-machine default shipped as `devices/equipment.yaml`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from devices.mixer_tags import MIXER_TAGS, Tag
from devices.modbus_plc import MixerPlc, PlcSettings
from devices.mtsics import MtSicsScale, ScaleSettings
from devices.register import (
    DEFAULT_REGISTER,
    Cleaning,
    Equipment,
    EquipmentNotFitForUse,
    ModbusConnection,
    SerialConnection,
    UnknownEquipment,
)
from devices.register import EquipmentRegister as DeviceRegister
from devices.register import load_register as load_register_file
from recipes.plan import BatchPlan
from settings.config import Settings

__all__ = ["EquipmentError", "EquipmentRegister", "load_register", "register_path"]


class EquipmentError(Exception):
    """No registered equipment can fill a recipe role, or an id is not registered."""


class EquipmentRegister:
    """A register plus recipe binding.

    Built by `load_register(settings)`. The `scales=`/`mixers=` form builds a minimal
    register from connection settings alone (tests, ad-hoc tools): entries with no
    serial number or calibration date to check, marked clean.
    """

    def __init__(
        self,
        scales: Mapping[str, ScaleSettings] | None = None,
        mixers: Mapping[str, PlcSettings] | None = None,
        *,
        register: DeviceRegister | None = None,
    ) -> None:
        if register is None:
            register = DeviceRegister(_ad_hoc_entries(scales or {}, mixers or {}))
        self.devices = register

    def bind(self, plan: BatchPlan, today: date | None = None) -> dict[str, str]:
        """Bind each recipe role to the first registered equipment of its class that is
        calibrated and clean; EquipmentError says why nothing fits."""
        binding: dict[str, str] = {}
        for req in plan.equipment:
            candidates = self.devices.of_class(req.equipment_class)
            if not candidates:
                classes = sorted({e.equipment_class for e in self.devices.entries.values()})
                raise EquipmentError(
                    f"No {req.equipment_class} is registered for the recipe role "
                    f"'{req.role}' (the register {self.devices.source} has: "
                    f"{', '.join(classes) or 'nothing'}): add one to the equipment register"
                )
            refusals: list[str] = []
            for entry in candidates:
                try:
                    self.devices.check_fit_for_use(entry.equipment_id, today)
                except EquipmentNotFitForUse as exc:
                    refusals.append(str(exc))
                    continue
                binding[req.role] = entry.equipment_id
                break
            else:
                raise EquipmentError(
                    f"No usable {req.equipment_class} for the recipe role '{req.role}': "
                    + " | ".join(refusals)
                )
        return binding

    # The fitness checks the device activities run before each use.
    def check_fit_for_use(self, equipment_id: str, today: date | None = None) -> Equipment:
        return self.devices.check_fit_for_use(equipment_id, today)

    def check_scale_identity(self, equipment_id: str, serial_number: str) -> None:
        self.devices.check_scale_identity(equipment_id, serial_number)

    def scale(self, equipment_id: str) -> ScaleSettings:
        try:
            return self.devices.scale_settings(equipment_id)
        except UnknownEquipment as exc:
            raise EquipmentError(str(exc)) from exc

    def mixer(self, equipment_id: str) -> PlcSettings:
        try:
            return self.devices.plc_settings(equipment_id)
        except UnknownEquipment as exc:
            raise EquipmentError(str(exc)) from exc

    def mixer_tags(self, equipment_id: str) -> dict[str, Tag]:
        """The mixer's tag map from the register (the built-in map when it names none)."""
        try:
            return dict(self.devices.get(equipment_id).tags or MIXER_TAGS)
        except UnknownEquipment as exc:
            raise EquipmentError(str(exc)) from exc

    # Openers for DeviceActivities: connection settings and tag map from the register.
    # They raise the register's DeviceErrors, which the activities report as such.
    def open_scale(self, equipment_id: str) -> MtSicsScale:
        return MtSicsScale(self.devices.scale_settings(equipment_id))

    def open_mixer(self, equipment_id: str) -> MixerPlc:
        tags = self.devices.get(equipment_id).tags or MIXER_TAGS
        return MixerPlc(self.devices.plc_settings(equipment_id), tags=tags)


def register_path(settings: Settings) -> Path:
    site = settings.var_dir / "equipment.yaml"
    return site if site.exists() else DEFAULT_REGISTER


def load_register(settings: Settings) -> EquipmentRegister:
    """The site's (or the default) register; `simulator` connections resolve, at each
    use, to EBR_SCALE_URL / EBR_PLC_HOST when set, else to the running simulators."""

    def simulator_state() -> dict[str, Any]:
        state = _read_state(settings.devices_state_file)
        if settings.scale_url:
            state["scale_port"] = settings.scale_url
        if settings.plc_host:
            state["plc_host"] = settings.plc_host
            state["plc_port"] = settings.plc_port
        return state

    devices = load_register_file(register_path(settings), simulator_state=simulator_state)
    return EquipmentRegister(register=devices)


def _read_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _ad_hoc_entries(
    scales: Mapping[str, ScaleSettings], mixers: Mapping[str, PlcSettings]
) -> list[Equipment]:
    clean = Cleaning("clean")
    entries = [
        Equipment(
            equipment_id=eq_id,
            equipment_class="scale",
            driver="mt-sics",
            connection=SerialConnection(
                url=s.url, baudrate=s.baudrate, parity=s.parity, bytesize=s.bytesize,
                stopbits=s.stopbits, timeout_s=s.timeout_s,
            ),
            cleaning=clean,
        )
        for eq_id, s in scales.items()
    ]
    entries += [
        Equipment(
            equipment_id=eq_id,
            equipment_class="mixer",
            driver="modbus-tcp",
            connection=ModbusConnection(
                host=p.host, port=p.port, device_id=p.device_id, timeout_s=p.timeout_s
            ),
            tag_map="mixer",
            cleaning=clean,
        )
        for eq_id, p in mixers.items()
    ]
    return entries
