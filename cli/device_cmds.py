"""`ebr devices …`: simulated instruments, and talking to real ones from a shell.

Device errors end the command with exit code 1 and the driver's message (which names the
device and what to check), never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from cli.common import load_settings

devices_app = typer.Typer(help="Instruments: simulators, scale readings, PLC tags.",
                          no_args_is_help=True)
plc_app = typer.Typer(help="Read or write Modbus TCP tags.", no_args_is_help=True)
devices_app.add_typer(plc_app, name="plc")


@contextmanager
def _device_errors() -> Iterator[None]:
    from devices.errors import DeviceError

    try:
        yield
    except DeviceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _simulate() -> None:
    from devices.simulators import run_simulators
    from runtime.equipment import simulated_scales

    settings = load_settings()
    run_simulators(settings.devices_state_file, time_scale=settings.simulator_time_scale,
                   scales=simulated_scales(settings))


@devices_app.command("simulate")
def devices_simulate() -> None:
    """Run the simulated MT-SICS scales (pty + TCP) and the Modbus mixer, cooker and dryer PLCs."""
    _simulate()


@devices_app.command("sim")
def devices_sim() -> None:
    """Alias of `simulate`."""
    _simulate()


@devices_app.command("weigh")
def devices_weigh(
    url: Annotated[str, typer.Argument(help="device path or pyserial URL (socket://h:p)")],
    baudrate: Annotated[int, typer.Option("--baud")] = 9600,
    parity: Annotated[str, typer.Option(help="N, E, O, M or S")] = "N",
    timeout: Annotated[float, typer.Option(help="seconds to wait for each answer")] = 2.0,
    settle: Annotated[float, typer.Option(help="seconds to wait for a stable weight")] = 10.0,
) -> None:
    """Take one stable reading from an MT-SICS scale: value, unit and the raw frame."""
    from devices.mtsics import MtSicsScale, ScaleSettings

    settings = ScaleSettings(url=url, baudrate=baudrate, parity=parity, timeout_s=timeout)
    with _device_errors(), MtSicsScale(settings) as scale:
        reading = scale.stable_weight(settle_timeout_s=settle)
    typer.echo(f"{reading.value} {reading.unit}")
    for frame in reading.raw_frames:
        typer.echo(f"raw: {frame!r}")


def _plc(address: str, tag_map: str, equipment: str | None, device_id: int, timeout: float):  # type: ignore[no-untyped-def]
    from devices.plc import ModbusPlc, PlcSettings
    from devices.register import RegisterError
    from runtime.equipment import load_register

    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        typer.echo(f"error: {address!r} must look like HOST:PORT, e.g. 10.0.0.5:502", err=True)
        raise typer.Exit(2)
    try:
        register = load_register(load_settings()).devices
    except RegisterError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if equipment is not None:
        entry = register.entries.get(equipment)
        if entry is None or not entry.tags:
            known = ", ".join(sorted(i for i, e in register.entries.items() if e.tags))
            typer.echo(f"error: {equipment!r} is not Modbus equipment in the register "
                       f"{register.source} (Modbus equipment: {known or 'none'})", err=True)
            raise typer.Exit(2)
        tags = entry.tags
    elif tag_map in register.tag_maps:
        tags = register.tag_maps[tag_map]
    else:
        typer.echo(f"error: no tag map {tag_map!r} (known: {', '.join(register.tag_maps)})",
                   err=True)
        raise typer.Exit(2)
    settings = PlcSettings(host=host, port=int(port), device_id=device_id, timeout_s=timeout)
    return ModbusPlc(settings, tags=tags, name=equipment or "")


TagMapOption = Annotated[
    str, typer.Option("--tag-map", help="a built-in tag map (mixer, cooker) or one of the "
                      "equipment register's tag_maps")
]
EquipmentOption = Annotated[
    str | None, typer.Option("--equipment", help="use this register entry's tags instead")
]


@plc_app.command("read")
def plc_read(
    address: Annotated[str, typer.Argument(help="HOST:PORT of the PLC")],
    tags: Annotated[list[str], typer.Argument(help="tag names")],
    tag_map: TagMapOption = "mixer",
    equipment: EquipmentOption = None,
    device_id: int = 1,
    timeout: float = 3.0,
) -> None:
    """Print `TAG=VALUE` for each tag (values in the tag's unit)."""
    with _device_errors(), _plc(address, tag_map, equipment, device_id, timeout) as plc:
        values = plc.read_tags(tags)
    for name, value in values.items():
        typer.echo(f"{name}={value}")


@plc_app.command("write")
def plc_write(
    address: Annotated[str, typer.Argument(help="HOST:PORT of the PLC")],
    assignments: Annotated[list[str], typer.Argument(help="TAG=VALUE pairs")],
    tag_map: TagMapOption = "mixer",
    equipment: EquipmentOption = None,
    device_id: int = 1,
    timeout: float = 3.0,
) -> None:
    """Write each `TAG=VALUE` as a setpoint and print the value read back."""
    parsed: list[tuple[str, str]] = []
    for item in assignments:
        name, sep, text = item.partition("=")
        if not sep or not name or not text.strip():
            typer.echo(f"error: {item!r} must look like TAG=VALUE, e.g. speed_setpoint_rpm=25",
                       err=True)
            raise typer.Exit(2)
        parsed.append((name, text.strip()))
    with _device_errors(), _plc(address, tag_map, equipment, device_id, timeout) as plc:
        for name, value in parsed:
            typer.echo(f"{name}={plc.write_setpoint(name, value)}")
