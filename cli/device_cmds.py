"""`ebr devices …`: simulated instruments."""

from __future__ import annotations

import typer

from cli.common import load_settings

devices_app = typer.Typer(help="Simulated instruments.", no_args_is_help=True)


@devices_app.command("simulate")
def devices_simulate() -> None:
    """Run the simulated MT-SICS scale (pseudo-terminal + TCP) and Modbus mixer PLC."""
    from devices.simulators import run_simulators

    settings = load_settings()
    run_simulators(settings.devices_state_file, time_scale=settings.simulator_time_scale)
