"""The "simulated devices" process of `ebr up`: scales, a mixer, a cooker and a dryer PLC.

`run_simulators` starts them, publishes where they listen in a JSON state file and blocks
until told to stop. Other processes find the devices with `read_state`. Run it directly
with `python -m devices.simulators var/devices.json`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from devices.cooker_sim import CookerSimulator
from devices.dryer_sim import DryerSimulator
from devices.errors import DeviceConnectionError
from devices.plc_sim import MixerSimulator
from devices.scale_sim import ScaleSimulator

HOST = "127.0.0.1"


@dataclass(frozen=True)
class ScaleSpec:
    """A further simulated balance, identified by the serial number it answers to I4 (and
    by which a register entry with `url: simulator` finds it)."""

    serial_number: str
    capacity: Decimal
    decimals: int
    unit: str
    model: str = "simulated"


def run_simulators(
    state_file: Path,
    *,
    time_scale: float = 20.0,
    stop: threading.Event | None = None,
    scales: Sequence[ScaleSpec] = (),
) -> None:
    """Serve the simulated devices until `stop` is set or SIGINT/SIGTERM arrives.

    The scale is served on a pty (`scale_port`), on TCP (`scale_url`), over RFC 2217
    (`scale_rfc2217`, on a second pty) and with its control channel (`scale_control`);
    the mixer (`plc_host`, `plc_port`), the cooker (`cooker_host`, `cooker_port`) and the
    fluid-bed dryer (`dryer_host`, `dryer_port`) on Modbus TCP, with `time_scale`
    simulated seconds per real second. Each of `scales` is served on its own pty, TCP
    port and control channel, under `scales.<serial number>`. The state file is written
    atomically once everything listens and removed on the way out.
    """
    stop = stop or threading.Event()
    state_file = Path(state_file)
    scale = ScaleSimulator()
    mixer = MixerSimulator(time_scale=time_scale)
    cooker = CookerSimulator(time_scale=time_scale)
    dryer = DryerSimulator(time_scale=time_scale)
    more = {
        spec.serial_number: ScaleSimulator(
            model=spec.model, serial_number=spec.serial_number, capacity=spec.capacity,
            decimals=spec.decimals, unit=spec.unit,
        )
        for spec in scales
    }
    try:
        state = {
            "scale_port": scale.serve_pty(),
            "scale_url": f"socket://{HOST}:{scale.serve_tcp(HOST, 0)}",
            "scale_rfc2217": f"rfc2217://{HOST}:{scale.serve_rfc2217(HOST, 0)}",
            "scale_control": f"{HOST}:{scale.serve_control(HOST, 0)}",
            "plc_host": HOST,
            "plc_port": mixer.start(HOST, 0),
            "cooker_host": HOST,
            "cooker_port": cooker.start(HOST, 0),
            "dryer_host": HOST,
            "dryer_port": dryer.start(HOST, 0),
            "scales": {
                serial: {
                    "scale_port": sim.serve_pty(),
                    "scale_url": f"socket://{HOST}:{sim.serve_tcp(HOST, 0)}",
                    "scale_control": f"{HOST}:{sim.serve_control(HOST, 0)}",
                }
                for serial, sim in more.items()
            },
            "time_scale": time_scale,
            "pid": os.getpid(),
        }
        with _stop_on_signals(stop):
            _write_atomically(state_file, state)
            try:
                # A bounded wait keeps the main thread responsive to signals.
                while not stop.wait(0.2):
                    pass
            finally:
                with contextlib.suppress(FileNotFoundError):
                    state_file.unlink()
    finally:
        for sim in more.values():
            sim.close()
        dryer.close()
        cooker.close()
        mixer.close()
        scale.close()


def read_state(state_file: Path, wait_s: float = 10.0) -> dict[str, Any]:
    """The state written by `run_simulators`, waiting up to `wait_s` for it to appear."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            state = json.loads(Path(state_file).read_text())
            if isinstance(state, dict):
                return state
        except (FileNotFoundError, ValueError):
            pass  # not written yet: the writer renames a complete file into place
        if time.monotonic() >= deadline:
            raise DeviceConnectionError(
                f"Simulated devices did not publish {state_file} within {wait_s:g} s: "
                "start them (ebr up) and check that process's log"
            )
        time.sleep(0.05)


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    # Signal handlers can only be installed from the main thread; elsewhere (tests,
    # an embedding process) the caller stops us through the event.
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda _signum, _frame: stop.set())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _write_atomically(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Serve a simulated scale, mixer PLC, cooker PLC and dryer PLC."
    )
    parser.add_argument("state_file", type=Path, help="where to publish the devices' addresses")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=20.0,
        help="simulated seconds per real second for the PLCs (default 20)",
    )
    args = parser.parse_args(argv)
    run_simulators(args.state_file, time_scale=args.time_scale)


if __name__ == "__main__":
    main()
