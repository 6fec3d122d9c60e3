"""The equipment register: which instruments exist, how to reach them, and whether they
may be used today.

A register is one YAML file (format in docs/devices.md; the one-machine stack ships
`devices/equipment.yaml`). Each entry maps an equipment id to its class (what a recipe
asks for: `scale`, `mixer`, ...), its driver and connection settings, capacity and
resolution, the serial number the instrument must report, its calibration due date and
its cleaning status.

Connections may say `simulator` (`url: simulator` for a scale, `host: simulator` for a
PLC): the address is then looked up, at the moment of use, in the simulators' state file
(`devices.simulators.read_state`), so a restarted simulator on new ports is found without
reloading the register.

The YAML is loaded strictly (duplicate keys, anchors/aliases, unknown keys, oversized
files are refused) because a wrong register silently sends a weighing to the wrong
instrument. Every problem in the file is reported at once, with its path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node

from devices.errors import DeviceError
from devices.mtsics import ScaleReading, ScaleSettings
from devices.plc import PlcSettings
from devices.plc_tags import BIT_TABLES, TAG_TABLES, TAG_TYPES, Tag, overlaps
from devices.tag_maps import REQUIRED_TAGS, TAG_MAPS

SIMULATOR = "simulator"
DEFAULT_REGISTER = Path(__file__).with_name("equipment.yaml")
MAX_BYTES = 256 * 1024
MAX_DEPTH = 16
DRIVERS = ("mt-sics", "modbus-tcp")
# Reads the simulators' state file (addresses keyed scale_port, plc_host, plc_port, ...).
SimulatorState = Callable[[], Mapping[str, Any]]
# Which simulated PLC serves `host: simulator` for each equipment class: the state-file
# keys of its host and port.
SIMULATED_PLCS = {
    "mixer": ("plc_host", "plc_port"),
    "cooker": ("cooker_host", "cooker_port"),
    "fluid-bed-dryer": ("dryer_host", "dryer_port"),
}
STATION_QUEUE_PREFIX = "ebr-station-"


def station_task_queue(station: str) -> str:
    """The task queue on which the device activities of a station's equipment run."""
    return f"{STATION_QUEUE_PREFIX}{station}"


class RegisterError(Exception):
    """The register file is missing or invalid; `problems` lists every finding."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        listed = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"Equipment register {source} is not valid:\n{listed}")


class UnknownEquipment(DeviceError):
    """An equipment id is not in the register, or not of the kind asked for (a DeviceError
    so an activity asked for it fails with this message rather than a traceback)."""


class EquipmentNotFitForUse(DeviceError):
    """Registered equipment must not be used now: overdue calibration, wrong instrument,
    not clean. A DeviceError so activities report it like any other device refusal;
    retrying does not help, a person has to act."""


class DeviceUnavailable(DeviceError):
    """A simulated device was asked for while no simulator is running."""


class CalibrationOverdue(EquipmentNotFitForUse):
    pass


class WrongInstrument(EquipmentNotFitForUse):
    pass


class NotClean(EquipmentNotFitForUse):
    pass


class ReadingMismatch(EquipmentNotFitForUse):
    """The scale reports in another unit or at another resolution than registered: it
    is set up differently from what was qualified, so no value of it is taken."""


@dataclass(frozen=True)
class SerialConnection:
    """An MT-SICS instrument: device path, pyserial URL, or `simulator`."""

    url: str
    baudrate: int = 9600
    parity: str = "N"
    bytesize: int = 8
    stopbits: int = 1
    timeout_s: float = 2.0


@dataclass(frozen=True)
class ModbusConnection:
    """A Modbus TCP device; host `simulator` takes host and port from the state file."""

    host: str
    port: int = 502
    device_id: int = 1
    timeout_s: float = 3.0


@dataclass(frozen=True)
class Cleaning:
    status: Literal["clean", "dirty"]
    cleaned_at: datetime | None = None


@dataclass(frozen=True)
class Equipment:
    """One register entry. `calibration_due` None means the equipment is not subject to
    calibration (allowed for every class but `scale`)."""

    equipment_id: str
    equipment_class: str
    driver: str
    connection: SerialConnection | ModbusConnection
    description: str = ""
    serial_number: str | None = None
    capacity: Decimal | None = None
    resolution: Decimal | None = None
    unit: str | None = None
    calibration_due: date | None = None
    cleaning: Cleaning = field(default_factory=lambda: Cleaning("clean"))
    tag_map: str | None = None
    tags: Mapping[str, Tag] = field(default_factory=dict)
    # The weighing station (or other PC) whose `ebr worker --station` hosts this
    # equipment's device activities; None: any worker on the main task queue.
    station: str | None = None
    # What it covers (min, max, unit) when that is not 0..capacity in `unit`, e.g. a
    # cooker's temperatures while its capacity is in litres.
    range: tuple[Decimal, Decimal, str] | None = None
    # The area (line, room) the equipment stands in: a batch bound to it runs there.
    area: str | None = None

    def unfit_reasons(self, today: date) -> list[str]:
        """Why this equipment must not be used on `today`; empty when it may."""
        reasons = []
        if self.calibration_due is not None and self.calibration_due < today:
            reasons.append(
                f"its calibration was due on {self.calibration_due.isoformat()}: calibrate "
                "it and update the register"
            )
        if self.cleaning.status != "clean":
            reasons.append("it is marked dirty: clean it and record the cleaning in the register")
        return reasons


class EquipmentRegister:
    """The loaded register; look-ups raise UnknownEquipment with the ids that do exist."""

    def __init__(
        self,
        entries: Iterable[Equipment],
        *,
        simulator_state: SimulatorState | None = None,
        source: str = "<register>",
        tag_maps: Mapping[str, Mapping[str, Tag]] | None = None,
    ) -> None:
        self.entries: dict[str, Equipment] = {e.equipment_id: e for e in entries}
        self.source = source
        self._simulator_state = simulator_state
        # Named tag maps: the built-in ones plus the register's `tag_maps:`.
        self.tag_maps: dict[str, Mapping[str, Tag]] = {**TAG_MAPS, **(tag_maps or {})}

    def get(self, equipment_id: str) -> Equipment:
        try:
            return self.entries[equipment_id]
        except KeyError:
            known = ", ".join(sorted(self.entries)) or "none"
            raise UnknownEquipment(
                f"{equipment_id} is not in the equipment register {self.source} "
                f"(registered: {known})"
            ) from None

    def of_class(self, equipment_class: str) -> list[Equipment]:
        return [e for e in self.entries.values() if e.equipment_class == equipment_class]

    # -- stations ----------------------------------------------------------------------

    def at_station(self, station: str) -> list[Equipment]:
        """The equipment whose device activities the station's worker hosts."""
        return [e for e in self.entries.values() if e.station == station]

    def subset(self, entries: Iterable[Equipment], label: str) -> EquipmentRegister:
        """A register of some of these entries, resolving connections the same way."""
        return EquipmentRegister(
            entries,
            simulator_state=self._simulator_state,
            source=f"{self.source} ({label})",
            tag_maps=self.tag_maps,
        )

    def stations(self) -> list[str]:
        return sorted({e.station for e in self.entries.values() if e.station})

    def task_queues(self, binding: Mapping[str, str]) -> dict[str, str]:
        """Equipment id -> task queue for the bound equipment (recipe role -> id) that
        sits at a station; equipment without a station is absent (the main queue)."""
        queues = {}
        for equipment_id in binding.values():
            station = self.get(equipment_id).station
            if station:
                queues[equipment_id] = station_task_queue(station)
        return queues

    # -- fitness for use -------------------------------------------------------------

    def check_fit_for_use(self, equipment_id: str, today: date | None = None) -> Equipment:
        """The entry, or EquipmentNotFitForUse naming every reason it may not be used."""
        entry = self.get(equipment_id)
        reasons = entry.unfit_reasons(today or _today())
        if reasons:
            exc_type: type[EquipmentNotFitForUse] = (
                CalibrationOverdue if "calibration" in reasons[0] else NotClean
            )
            raise exc_type(f"{equipment_id} must not be used: " + "; ".join(reasons))
        return entry

    def check_scale_identity(self, equipment_id: str, serial_number: str) -> None:
        """WrongInstrument unless the scale reports the serial number the register holds."""
        expected = self.get(equipment_id).serial_number
        if expected is not None and serial_number.strip() != expected:
            raise WrongInstrument(
                f"The scale connected as {equipment_id} reports serial number "
                f"{serial_number!r}, but the register expects {expected!r}: check which "
                "scale is plugged into this port, or correct the register"
            )

    def check_scale_reading(self, equipment_id: str, reading: ScaleReading) -> None:
        """ReadingMismatch unless the reading is in the registered unit and at the
        registered resolution (as many decimals as `resolution` has); entries without a
        unit or resolution are not checked for it."""
        entry = self.get(equipment_id)
        if entry.unit is not None and reading.unit != entry.unit:
            raise ReadingMismatch(
                f"The scale {equipment_id} reports in {reading.unit} but the register says "
                f"{entry.unit}: set the scale's display unit to {entry.unit} (or correct the "
                f"register); the reading {reading.raw_frames[-1]!r} was not taken"
            )
        if entry.resolution is not None:
            wanted = _places(entry.resolution)
            if _places(reading.value) != wanted:
                raise ReadingMismatch(
                    f"The scale {equipment_id} reports {reading.value} {reading.unit} with "
                    f"{_places(reading.value)} decimals but the register gives its resolution "
                    f"as {entry.resolution} ({wanted} decimals): check the scale's "
                    "readability setting (or correct the register); the reading was not taken"
                )

    # -- connections -----------------------------------------------------------------

    def scale_settings(self, equipment_id: str) -> ScaleSettings:
        entry = self.get(equipment_id)
        conn = entry.connection
        if entry.driver != "mt-sics" or not isinstance(conn, SerialConnection):
            raise UnknownEquipment(
                f"{equipment_id} is a {entry.equipment_class} ({entry.driver}), not an "
                "MT-SICS scale"
            )
        url = conn.url
        if url == SIMULATOR:
            url = str(self._simulated_scale(entry))
        return ScaleSettings(
            url=url,
            baudrate=conn.baudrate,
            parity=conn.parity,
            bytesize=conn.bytesize,
            stopbits=conn.stopbits,
            timeout_s=conn.timeout_s,
            name=equipment_id,
        )

    def plc_settings(self, equipment_id: str) -> PlcSettings:
        entry = self.get(equipment_id)
        conn = entry.connection
        if entry.driver != "modbus-tcp" or not isinstance(conn, ModbusConnection):
            raise UnknownEquipment(
                f"{equipment_id} is a {entry.equipment_class} ({entry.driver}), not a "
                "Modbus TCP device"
            )
        host, port = conn.host, conn.port
        if host == SIMULATOR:
            host_key, port_key = SIMULATED_PLCS[entry.equipment_class]
            host = str(self._simulated(host_key, equipment_id))
            port = int(self._simulated(port_key, equipment_id))
        return PlcSettings(
            host=host, port=port, device_id=conn.device_id, timeout_s=conn.timeout_s
        )

    def _simulated_scale(self, entry: Equipment) -> Any:
        """The port of the simulated scale with this entry's serial number when the
        simulators play one (`scales` in their state), else the default simulated scale."""
        state = self._simulator_state() if self._simulator_state is not None else {}
        own = state.get("scales", {}).get(entry.serial_number or "", {}).get("scale_port")
        return own or self._simulated("scale_port", entry.equipment_id)

    def _simulated(self, key: str, equipment_id: str) -> Any:
        state = self._simulator_state() if self._simulator_state is not None else {}
        value = state.get(key)
        if value in (None, ""):
            raise DeviceUnavailable(
                f"{equipment_id} is registered as a simulated device, but no simulator "
                f"publishes {key!r}: start the simulators (`ebr up` or `ebr devices sim`) "
                "or give the real connection in the equipment register"
            )
        return value


# -- loading ---------------------------------------------------------------------------


def load_register(
    path: Path = DEFAULT_REGISTER, *, simulator_state: SimulatorState | None = None
) -> EquipmentRegister:
    """Load and validate a register file; RegisterError lists every problem."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise RegisterError(source, [f"cannot read the file ({exc.strerror or exc})"]) from exc
    if len(raw) > MAX_BYTES:
        raise RegisterError(source, [f"the file has {len(raw)} bytes; the limit is {MAX_BYTES}"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RegisterError(source, [f"the file is not UTF-8 text ({exc})"]) from exc
    return parse_register(text, source=source, simulator_state=simulator_state)


def parse_register(
    text: str, *, source: str = "<register>", simulator_state: SimulatorState | None = None
) -> EquipmentRegister:
    data = _safe_load(text, source)
    problems: list[str] = []
    validator = _Validator(problems)
    entries = validator.register(data)
    if problems:
        raise RegisterError(source, problems)
    return EquipmentRegister(
        entries, simulator_state=simulator_state, source=source, tag_maps=validator.tag_maps
    )


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without anchors/aliases (no alias bombs), without duplicate keys, with
    bounded nesting; decimals become Decimal from their text (0.01 stays exact)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()
        line = event.start_mark.line + 1
        if isinstance(event, AliasEvent) or getattr(event, "anchor", None):
            raise _Refused(f"line {line}: YAML anchors and aliases are not allowed here")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(f"line {line}: nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise _Refused(
                    f"line {line}: duplicate key {key!r} (first at line {seen[key]}); keep one"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=True)

    def construct_yaml_float(self, node: Node) -> Decimal:  # type: ignore[override]
        text = str(self.construct_scalar(node)).replace("_", "")  # type: ignore[arg-type]
        try:
            value = Decimal(text)
        except InvalidOperation:
            value = Decimal("NaN")
        if not value.is_finite():
            raise _Refused(f"line {node.start_mark.line + 1}: {text!r} is not a finite number")
        return value


_StrictLoader.add_constructor("tag:yaml.org,2002:float", _StrictLoader.construct_yaml_float)


class _Refused(Exception):
    pass


def _safe_load(text: str, source: str) -> Any:
    loader = _StrictLoader(text)
    try:
        return loader.get_single_data()
    except _Refused as exc:
        raise RegisterError(source, [str(exc)]) from None
    except yaml.YAMLError as exc:
        raise RegisterError(source, [f"YAML syntax error: {exc}"]) from None
    finally:
        loader.dispose()


_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
_MISSING = object()


class _Validator:
    """Turns the loaded YAML into entries, appending every problem with its path."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        self.tag_maps: dict[str, dict[str, Tag]] = {}

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def register(self, data: Any) -> list[Equipment]:
        if not isinstance(data, dict):
            self.fail("(top)", "a register is a mapping with 'ebr_equipment: 1' and 'equipment'")
            return []
        self.unknown(data, "(top)", {"ebr_equipment", "equipment", "tag_maps"})
        if data.get("ebr_equipment") != 1:
            self.fail("ebr_equipment", "must be 1 (the register format version)")
        tag_maps: dict[str, Mapping[str, Tag]] = dict(TAG_MAPS)
        for name, spec in self.mapping(data, "tag_maps", "(top)", required=False).items():
            self.tag_maps[str(name)] = self.tag_map(spec, f"tag_maps.{name}")
            tag_maps[str(name)] = self.tag_maps[str(name)]
        equipment = self.mapping(data, "equipment", "(top)", required=True)
        entries = []
        for equipment_id, spec in equipment.items():
            path = f"equipment.{equipment_id}"
            if not isinstance(equipment_id, str) or not _ID.match(equipment_id):
                self.fail(path, "an equipment id is letters, digits, '-', '_' or '.' (<= 64)")
                continue
            entry = self.entry(equipment_id, spec, path, tag_maps)
            if entry is not None:
                entries.append(entry)
        return entries

    def entry(
        self, equipment_id: str, spec: Any, path: str, tag_maps: Mapping[str, Mapping[str, Tag]]
    ) -> Equipment | None:
        if not isinstance(spec, dict):
            self.fail(path, "must be a mapping (class, driver, connection, ...)")
            return None
        allowed = {
            "class", "driver", "description", "connection", "serial_number", "capacity",
            "resolution", "unit", "calibration_due", "cleaning", "tag_map", "tags", "station",
            "range",
            "area",
        }  # fmt: skip
        self.unknown(spec, path, allowed)
        eq_class = self.text(spec, "class", path)
        driver = self.text(spec, "driver", path)
        if driver not in DRIVERS:
            self.fail(f"{path}.driver", f"must be one of {', '.join(DRIVERS)}, got {driver!r}")
            return None
        conn_spec = self.mapping(spec, "connection", path, required=True)
        connection: SerialConnection | ModbusConnection
        tags: Mapping[str, Tag] = {}
        tag_map_name: str | None = None
        if driver == "mt-sics":
            connection = self.serial(conn_spec, f"{path}.connection")
            for key in ("tag_map", "tags"):
                if key in spec:
                    self.fail(f"{path}.{key}", "only Modbus equipment has tags")
        else:
            connection = self.modbus(conn_spec, f"{path}.connection")
            if connection.host == SIMULATOR and eq_class not in SIMULATED_PLCS:
                self.fail(
                    f"{path}.connection.host",
                    f"no simulator plays a {eq_class!r} (simulated: "
                    f"{', '.join(SIMULATED_PLCS)}): give the PLC's host name or address",
                )
            tag_map_name, tags = self.entry_tags(spec, path, tag_maps)
            required = REQUIRED_TAGS.get(str(eq_class), frozenset())
            if tags and not set(tags) >= required:
                missing = ", ".join(sorted(required - set(tags)))
                self.fail(f"{path}.tags", f"a {eq_class}'s tag map must define {missing}")
        serial_number = self.text(spec, "serial_number", path, required=driver == "mt-sics")
        calibration_due = self.date(spec, "calibration_due", path, required=eq_class == "scale")
        cleaning = self.cleaning(spec.get("cleaning", _MISSING), f"{path}.cleaning")
        return Equipment(
            equipment_id=equipment_id,
            equipment_class=eq_class,
            driver=driver,
            connection=connection,
            description=self.text(spec, "description", path, required=False) or "",
            serial_number=serial_number,
            capacity=self.decimal(spec, "capacity", path),
            resolution=self.decimal(spec, "resolution", path),
            unit=self.text(spec, "unit", path, required=False),
            calibration_due=calibration_due,
            cleaning=cleaning,
            tag_map=tag_map_name,
            tags=tags,
            station=self.station(spec, path),
            range=self.span(spec, path),
            area=self.text(spec, "area", path, required=False),
        )

    def span(self, spec: dict[str, Any], path: str) -> tuple[Decimal, Decimal, str] | None:
        if "range" not in spec:
            return None
        value = spec["range"]
        rpath = f"{path}.range"
        if not isinstance(value, dict):
            self.fail(rpath, "must be a mapping {min, max, unit}")
            return None
        self.unknown(value, rpath, {"min", "max", "unit"})
        low, high = self.number(value, "min", rpath), self.number(value, "max", rpath)
        unit = self.text(value, "unit", rpath)
        if low is None or high is None:
            self.fail(rpath, "give both min and max")
            return None
        if low > high:
            self.fail(rpath, f"min {low} is above max {high}")
        return (low, high, unit) if unit else None

    def station(self, spec: dict[str, Any], path: str) -> str | None:
        station = self.text(spec, "station", path, required=False)
        if station is not None and not _ID.match(station):
            self.fail(f"{path}.station", "a station name is letters, digits, '-', '_' or '.'")
            return None
        return station

    def serial(self, spec: dict[str, Any], path: str) -> SerialConnection:
        self.unknown(spec, path, {"url", "baudrate", "parity", "bytesize", "stopbits", "timeout_s"})
        parity = spec.get("parity", "N")
        if parity not in ("N", "E", "O", "M", "S"):
            self.fail(f"{path}.parity", f"must be N, E, O, M or S, got {parity!r}")
        return SerialConnection(
            url=self.text(spec, "url", path) or "",
            baudrate=self.integer(spec, "baudrate", path, 9600, (50, 4_000_000)),
            parity=str(parity),
            bytesize=self.integer(spec, "bytesize", path, 8, (5, 8)),
            stopbits=self.integer(spec, "stopbits", path, 1, (1, 2)),
            timeout_s=self.seconds(spec, "timeout_s", path, 2.0),
        )

    def modbus(self, spec: dict[str, Any], path: str) -> ModbusConnection:
        self.unknown(spec, path, {"host", "port", "device_id", "timeout_s"})
        return ModbusConnection(
            host=self.text(spec, "host", path) or "",
            port=self.integer(spec, "port", path, 502, (1, 65535)),
            device_id=self.integer(spec, "device_id", path, 1, (0, 255)),
            timeout_s=self.seconds(spec, "timeout_s", path, 3.0),
        )

    def entry_tags(
        self, spec: dict[str, Any], path: str, tag_maps: Mapping[str, Mapping[str, Tag]]
    ) -> tuple[str | None, Mapping[str, Tag]]:
        if "tags" in spec and "tag_map" in spec:
            self.fail(path, "give either tag_map (a name) or tags (inline), not both")
        if "tags" in spec:
            return None, self.tag_map(spec["tags"], f"{path}.tags")
        name = self.text(spec, "tag_map", path)
        if name is None:
            return None, {}
        if name not in tag_maps:
            known = ", ".join(sorted(tag_maps))
            self.fail(f"{path}.tag_map", f"no tag map named {name!r} (known: {known})")
            return name, {}
        return name, dict(tag_maps[name])

    def tag_map(self, spec: Any, path: str) -> dict[str, Tag]:
        if not isinstance(spec, dict) or not spec:
            self.fail(path, "a tag map is a non-empty mapping of tag name -> {table, address}")
            return {}
        tags: dict[str, Tag] = {}
        for name, tag_spec in spec.items():
            tag = self.tag(str(name), tag_spec, f"{path}.{name}")
            if tag is not None:
                tags[tag.name] = tag
        for tag, address, other in overlaps(tags):
            self.fail(
                f"{path}.{tag.name}", f"{tag.table} address {address} is already used by {other}"
            )
        return tags

    def tag(self, name: str, spec: Any, tpath: str) -> Tag | None:
        if not isinstance(spec, dict):
            self.fail(tpath, "must be a mapping with table and address")
            return None
        self.unknown(spec, tpath, {
            "table", "address", "type", "word_order", "byte_order", "scale", "decimals",
            "unit", "min", "max",
        })  # fmt: skip
        table = spec.get("table")
        bit = table in BIT_TABLES
        datatype = spec.get("type", "bool" if bit else "uint16")
        word_order = spec.get("word_order", "big")
        byte_order = spec.get("byte_order", "big")
        ok = True
        for key, value, choices in (
            ("table", table, TAG_TABLES),
            ("type", datatype, ("bool",) if bit else TAG_TYPES),
            ("word_order", word_order, ("big", "little")),
            ("byte_order", byte_order, ("big", "little")),
        ):
            if value not in choices:
                self.fail(f"{tpath}.{key}", f"must be one of {', '.join(choices)}")
                ok = False
        address = self.integer(spec, "address", tpath, None, (0, 65535))
        numeric = not bit and datatype != "bool"
        for key in ("scale", "decimals", "unit", "min", "max"):
            if key in spec and not numeric:
                self.fail(f"{tpath}.{key}", f"only numeric register tags take {key}")
                ok = False
        scale = self.decimal(spec, "scale", tpath)
        if scale is not None and datatype == "float32":
            self.fail(f"{tpath}.scale", "a float32 already holds the value: drop scale")
        decimals = self.integer(spec, "decimals", tpath, 0, (0, 6)) if "decimals" in spec else None
        minimum, maximum = self.number(spec, "min", tpath), self.number(spec, "max", tpath)
        if minimum is not None and maximum is not None and minimum > maximum:
            self.fail(f"{tpath}.min", f"min {minimum} is above max {maximum}")
        if not ok or address is None:
            return None
        return Tag(
            name, table, address, datatype, word_order, byte_order,
            scale=scale, decimals=decimals, unit=self.text(spec, "unit", tpath, required=False),
            minimum=minimum, maximum=maximum,
        )  # fmt: skip

    def cleaning(self, spec: Any, path: str) -> Cleaning:
        if spec is _MISSING:
            self.fail(path, "required: {status: clean|dirty, cleaned_at: <UTC time>}")
            return Cleaning("dirty")
        if not isinstance(spec, dict):
            self.fail(path, "must be a mapping {status: clean|dirty, cleaned_at: ...}")
            return Cleaning("dirty")
        self.unknown(spec, path, {"status", "cleaned_at"})
        status = spec.get("status")
        if status not in ("clean", "dirty"):
            self.fail(f"{path}.status", f"must be clean or dirty, got {status!r}")
            status = "dirty"
        cleaned_at = spec.get("cleaned_at")
        if isinstance(cleaned_at, str):
            try:
                cleaned_at = datetime.fromisoformat(cleaned_at)
            except ValueError:
                cleaned_at = _MISSING
        if isinstance(cleaned_at, datetime) and cleaned_at.tzinfo is None:
            # PyYAML drops "Z"-less offsets to naive times; a record time must be UTC.
            self.fail(f"{path}.cleaned_at", "give the time with its offset, e.g. ...T08:00:00Z")
        elif cleaned_at is not None and not isinstance(cleaned_at, datetime):
            self.fail(f"{path}.cleaned_at", "must be a date and time such as 2026-03-01T08:00Z")
            cleaned_at = None
        if status == "clean" and cleaned_at is None:
            self.fail(f"{path}.cleaned_at", "required when status is clean")
        return Cleaning(status, cleaned_at if isinstance(cleaned_at, datetime) else None)

    # -- scalars ---------------------------------------------------------------------

    def unknown(self, spec: dict[Any, Any], path: str, allowed: set[str]) -> None:
        for key in spec:
            if key not in allowed:
                self.fail(
                    f"{path}.{key}", f"unknown key (allowed: {', '.join(sorted(allowed))})"
                )

    def mapping(self, spec: dict[str, Any], key: str, path: str, *, required: bool) -> dict:
        value = spec.get(key, _MISSING)
        if value is _MISSING and not required:
            return {}
        if not isinstance(value, dict):
            self.fail(f"{path}.{key}", "required, a mapping" if required else "must be a mapping")
            return {}
        return value

    def text(
        self, spec: dict[str, Any], key: str, path: str, *, required: bool = True
    ) -> str | None:
        value = spec.get(key)
        if value is None:
            if required:
                self.fail(f"{path}.{key}", "required")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.fail(f"{path}.{key}", f"must be text, got {value!r}")
            return None
        return str(value)

    def integer(
        self,
        spec: dict[str, Any],
        key: str,
        path: str,
        default: int | None,
        bounds: tuple[int, int],
    ) -> Any:
        value = spec.get(key, default)
        if value is None:
            self.fail(f"{path}.{key}", "required")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(f"{path}.{key}", f"must be a whole number, got {value!r}")
            return default
        if not bounds[0] <= value <= bounds[1]:
            self.fail(f"{path}.{key}", f"must be between {bounds[0]} and {bounds[1]}")
            return default
        return value

    def seconds(self, spec: dict[str, Any], key: str, path: str, default: float) -> float:
        value = spec.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            self.fail(f"{path}.{key}", f"must be a number of seconds, got {value!r}")
            return default
        if not 0 < value <= 60:
            self.fail(f"{path}.{key}", "must be more than 0 and at most 60 seconds")
            return default
        return float(value)

    def decimal(self, spec: dict[str, Any], key: str, path: str) -> Decimal | None:
        value = spec.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            self.fail(f"{path}.{key}", f"must be a number, got {value!r}")
            return None
        if value <= 0:
            self.fail(f"{path}.{key}", "must be positive")
        return Decimal(value)

    def number(self, spec: dict[str, Any], key: str, path: str) -> Decimal | None:
        """Any finite number (negative allowed), kept exact."""
        value = spec.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            self.fail(f"{path}.{key}", f"must be a number, got {value!r}")
            return None
        return Decimal(value)

    def date(self, spec: dict[str, Any], key: str, path: str, *, required: bool) -> date | None:
        value = spec.get(key)
        if value is None:
            if required:
                self.fail(f"{path}.{key}", "required for this class (ISO date, e.g. 2026-12-31)")
            return None
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        self.fail(f"{path}.{key}", f"must be an ISO date such as 2026-12-31, got {value!r}")
        return None


def _places(value: Decimal) -> int:
    """Decimals as written: 1200.40 -> 2, 0.01 -> 2, 5 -> 0."""
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _today() -> date:
    # Calibration due dates are calendar dates at the site; UTC is what the record uses.
    return datetime.now(UTC).date()
