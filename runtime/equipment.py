"""The equipment register as the worker and the API use it.

The register itself (YAML, validation, connections, fitness for use) lives in
`devices/register.py`. This module chooses the file, wires the simulators' state file
and the `EBR_SCALE_URL` / `EBR_PLC_*` settings in, and binds a recipe's equipment roles.

Which file: `<EBR_VAR_DIR>/equipment.yaml` when it exists (the site's register);
otherwise, outside production, the demo site's copy `ebr up` writes with current cleaning
dates (`runtime/demo_site.py`); otherwise the default shipped as `devices/equipment.yaml`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from devices.mixer_tags import MIXER_TAGS, Tag
from devices.modbus_plc import MixerPlc
from devices.mtsics import MtSicsScale, ScaleReading, ScaleSettings
from devices.plc import ModbusPlc, PlcSettings
from devices.register import (
    DEFAULT_REGISTER,
    SIMULATOR,
    Cleaning,
    Equipment,
    ModbusConnection,
    SerialConnection,
    UnknownEquipment,
)
from devices.register import EquipmentRegister as DeviceRegister
from devices.register import load_register as load_register_file
from devices.scale_sim import DEFAULT_SERIAL
from devices.simulators import ScaleSpec
from recipes.plan import BatchPlan
from runtime.binding import refusals
from runtime.demo_site import demo_register_path
from settings.config import Settings

__all__ = [
    "EquipmentError", "EquipmentRegister", "load_register", "needs_simulators", "register_path",
    "simulated_scales",
]


class EquipmentError(Exception):
    """No registered equipment can fill a recipe role, or an id is not registered."""


class StationError(EquipmentError):
    """A station worker was asked for a station no register entry names."""


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

    def bind(
        self, plan: BatchPlan, today: date | None = None, *, now: datetime | None = None
    ) -> dict[str, str]:
        """Bind each recipe role to the first registered equipment of its class that
        meets the role's requirement: calibrated and clean (unless the recipe waives it),
        cleaned recently enough, covering its range and readability
        (`runtime/binding.py`). EquipmentError names every candidate and why it was
        refused. `today` (tests) fixes the date; `now` the time for cleaning hold times."""
        now = now or (
            datetime.combine(today, time(12), UTC) if today is not None else datetime.now(UTC)
        )
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
            refused: list[str] = []
            for entry in candidates:
                reasons = refusals(entry, req, now)
                if not reasons:
                    binding[req.role] = entry.equipment_id
                    break
                refused.append(f"{entry.equipment_id} must not be used: " + "; ".join(reasons))
            else:
                raise EquipmentError(
                    f"No usable {req.equipment_class} for the recipe role '{req.role}': "
                    + " | ".join(refused)
                )
        return binding

    def for_station(self, station: str) -> EquipmentRegister:
        """The register as a station's worker sees it: only the equipment whose
        `station` is `station`, so an activity for any other equipment is refused
        (UnknownEquipment) instead of reaching a device this PC does not own."""
        hosted = self.devices.at_station(station)
        if not hosted:
            stations = ", ".join(self.devices.stations()) or "none"
            raise StationError(
                f"No equipment in the register {self.devices.source} has `station: {station}` "
                f"(stations named there: {stations}): add the key to the entries of the "
                "devices attached to this PC, or start the worker for another station"
            )
        return EquipmentRegister(register=self.devices.subset(hosted, f"station {station}"))

    def task_queues(self, binding: Mapping[str, str]) -> dict[str, str]:
        """Equipment id -> task queue (`ebr-station-<name>`) for the bound equipment that
        sits at a station; the rest is absent and runs on the main task queue."""
        try:
            return self.devices.task_queues(binding)
        except UnknownEquipment as exc:
            raise EquipmentError(str(exc)) from exc
    def area_of(self, binding: Mapping[str, str]) -> str | None:
        """The area of the equipment a batch is bound to (None when the register names
        none); EquipmentError when the bound equipment stands in different areas."""
        areas = set()
        for equipment_id in binding.values():
            try:
                area = self.devices.get(equipment_id).area
            except UnknownEquipment:
                continue
            if area:
                areas.add(area)
        if len(areas) > 1:
            raise EquipmentError(
                f"The bound equipment stands in different areas ({', '.join(sorted(areas))}): "
                "name the batch's area in the request."
            )
        return areas.pop() if areas else None

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
        """The scale; its weights are checked against the registered unit and resolution
        before anyone sees them (ReadingMismatch)."""
        return RegisteredScale(self.devices.scale_settings(equipment_id), equipment_id,
                               self.devices)

    def open_mixer(self, equipment_id: str) -> MixerPlc:
        tags = self.devices.get(equipment_id).tags or MIXER_TAGS
        return MixerPlc(self.devices.plc_settings(equipment_id), tags=tags, name=equipment_id)

    def open_plc(self, equipment_id: str) -> ModbusPlc:
        """Any Modbus equipment with its register tag map: `read_tag(name)` and
        `write_setpoint(name, value)` (devices/plc.py)."""
        entry = self.devices.get(equipment_id)
        tags = entry.tags or (MIXER_TAGS if entry.equipment_class == "mixer" else {})
        return ModbusPlc(self.devices.plc_settings(equipment_id), tags=tags, name=equipment_id)


class RegisteredScale(MtSicsScale):
    """An MT-SICS scale whose weight readings must match its register entry: a scale set
    to another unit or readability than the one qualified is refused, not converted."""

    def __init__(self, settings: ScaleSettings, equipment_id: str, register: DeviceRegister):
        super().__init__(settings)
        self._equipment_id = equipment_id
        self._register = register

    def stable_weight(self, settle_timeout_s: float = 10.0) -> ScaleReading:
        return self._checked(super().stable_weight(settle_timeout_s))

    def immediate_weight(self) -> ScaleReading:
        return self._checked(super().immediate_weight())

    def _checked(self, reading: ScaleReading) -> ScaleReading:
        self._register.check_scale_reading(self._equipment_id, reading)
        return reading


def register_path(settings: Settings) -> Path:
    site = settings.var_dir / "equipment.yaml"
    if site.exists():
        return site
    demo = demo_register_path(settings)
    if settings.env != "production" and demo.exists():
        return demo
    return DEFAULT_REGISTER


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


def needs_simulators(settings: Settings) -> bool:
    """Whether any registered device is simulated and not replaced by EBR_SCALE_URL /
    EBR_PLC_HOST: then `ebr up` starts the simulators."""
    for entry in load_register_file(register_path(settings)).entries.values():
        conn = entry.connection
        if isinstance(conn, SerialConnection) and conn.url == SIMULATOR:
            replaced = bool(settings.scale_url)
        elif isinstance(conn, ModbusConnection) and conn.host == SIMULATOR:
            replaced = bool(settings.plc_host) and entry.equipment_class == "mixer"
        else:
            continue
        if not replaced:
            return True
    return False


def simulated_scales(settings: Settings) -> list[ScaleSpec]:
    """The balances the simulators must play besides the default one: every simulated
    scale in the register with its own serial number, capacity and readability."""
    specs = []
    for entry in load_register_file(register_path(settings)).entries.values():
        conn = entry.connection
        if not (isinstance(conn, SerialConnection) and conn.url == SIMULATOR):
            continue
        serial = entry.serial_number or DEFAULT_SERIAL
        if serial == DEFAULT_SERIAL or entry.capacity is None or not entry.unit:
            continue
        resolution = entry.resolution or Decimal("0.01")
        specs.append(ScaleSpec(
            serial_number=serial, capacity=entry.capacity, unit=entry.unit,
            decimals=max(0, -int(resolution.normalize().as_tuple().exponent)),
        ))
    return specs


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
