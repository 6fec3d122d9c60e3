"""Fixtures for the device layer: simulators on loopback and ptys, clients bound to them."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import pytest

from devices.line_transport import LineHandler, LineTcpServer
from devices.modbus_plc import MixerPlc, PlcSettings
from devices.mtsics import MtSicsScale, ScaleSettings
from devices.plc_sim import MixerSimulator
from devices.scale_sim import ScaleSimulator

SCALE_TIMEOUT_S = 0.5


@pytest.fixture
def scale_sim() -> Iterator[ScaleSimulator]:
    sim = ScaleSimulator()
    yield sim
    sim.close()


@pytest.fixture(params=["pty", "tcp"])
def scale_url(request: pytest.FixtureRequest, scale_sim: ScaleSimulator) -> str:
    """The simulator's MT-SICS port, once as a pseudo-terminal and once over TCP."""
    if request.param == "pty":
        return scale_sim.serve_pty()
    return f"socket://127.0.0.1:{scale_sim.serve_tcp()}"


@pytest.fixture
def scale(scale_url: str) -> Iterator[MtSicsScale]:
    with MtSicsScale(ScaleSettings(scale_url, timeout_s=SCALE_TIMEOUT_S, name="SCALE-01")) as s:
        yield s


@pytest.fixture
def scripted_scale() -> Iterator[Callable[[LineHandler], MtSicsScale]]:
    """A scale whose answers come from a test's handler, for answers the simulator never
    gives (garbage, multi-line, busy)."""
    servers: list[LineTcpServer] = []
    scales: list[MtSicsScale] = []

    def make(handler: LineHandler) -> MtSicsScale:
        server = LineTcpServer(handler, terminator=b"\r\n", name="scripted-scale")
        servers.append(server)
        port = server.start()
        url = f"socket://127.0.0.1:{port}"
        scales.append(MtSicsScale(ScaleSettings(url, timeout_s=SCALE_TIMEOUT_S, name="SCALE-01")))
        return scales[-1]

    yield make
    for s in scales:
        s.close()
    for server in servers:
        server.close()


@pytest.fixture
def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def mixer_sim() -> Iterator[MixerSimulator]:
    # 50 simulated seconds per real second: a 2 s mix completes in 40 ms.
    sim = MixerSimulator(time_scale=50.0)
    yield sim
    sim.close()


@pytest.fixture
def plc(mixer_sim: MixerSimulator) -> Iterator[MixerPlc]:
    port = mixer_sim.start()
    with MixerPlc(PlcSettings("127.0.0.1", port, timeout_s=1.0)) as client:
        yield client


def wait_until(predicate: Callable[[], bool], timeout_s: float = 2.0) -> bool:
    """Poll `predicate` every 10 ms; True as soon as it holds, False after the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@pytest.fixture(name="wait_until")
def wait_until_fixture() -> Callable[..., bool]:
    return wait_until
