"""Line faults on a real transport (loopback TCP via pyserial's socket:// URL): each ends
in a ScaleError within the client's timeout, and no weight comes out of a bad frame."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from devices.errors import ScaleCommandError, ScaleConnectionError, ScaleError, ScaleTimeout
from devices.mtsics import MtSicsScale, ScaleSettings

TIMEOUT_S = 0.5
# Behaviour of the scripted scale for one connection: gets the socket after each command.
Script = Callable[[socket.socket, int], bool]


@pytest.fixture
def faulty_scale() -> Iterator[Callable[[Script], MtSicsScale]]:
    """A scale that answers each command line with `script(conn, n)`; False hangs up."""
    listeners: list[socket.socket] = []
    scales: list[MtSicsScale] = []

    def serve(listener: socket.socket, script: Script) -> None:
        listener.settimeout(5.0)
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(5.0)
            for n in range(50):  # bounded: a test never needs more commands
                try:
                    if not conn.recv(64):
                        return
                    if not script(conn, n):
                        return
                except OSError:
                    return

    def make(script: Script) -> MtSicsScale:
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)
        threading.Thread(target=serve, args=(listener, script), daemon=True).start()
        port = listener.getsockname()[1]
        scales.append(
            MtSicsScale(ScaleSettings(f"socket://127.0.0.1:{port}", timeout_s=TIMEOUT_S,
                                      name="SCALE-01"))
        )
        return scales[-1]

    yield make
    for scale in scales:
        scale.close()
    for listener in listeners:
        listener.close()


def timed(call: Callable[[], object]) -> tuple[BaseException, float]:
    started = time.monotonic()
    with pytest.raises(ScaleError) as info:
        call()
    return info.value, time.monotonic() - started


def test_half_a_frame_then_silence_is_a_timeout_showing_the_fragment(faulty_scale):
    scale = faulty_scale(lambda conn, _: conn.sendall(b"S S    12") or True)
    error, elapsed = timed(lambda: scale.stable_weight(settle_timeout_s=0.5))
    assert isinstance(error, ScaleTimeout) and "got only b'S S    12'" in str(error)
    assert elapsed < 0.5 + TIMEOUT_S + 1.0


def test_half_a_frame_closed_by_crlf_is_not_a_weight(faulty_scale):
    scale = faulty_scale(lambda conn, _: conn.sendall(b"S S    12\r\n") or True)
    error, _ = timed(scale.stable_weight)
    assert isinstance(error, ScaleCommandError) and error.raw == "S S    12"


@pytest.mark.parametrize(
    "garbage", [b"\xff\xfe\x00\x81\r\n", b"S S \x00 100.00 g\r\n", b"S S 100.00 g\x07\r\n"]
)
def test_garbage_bytes_are_a_command_error_not_a_weight(faulty_scale, garbage: bytes):
    scale = faulty_scale(lambda conn, _: conn.sendall(garbage) or True)
    error, _ = timed(scale.stable_weight)
    assert isinstance(error, ScaleCommandError) and "SCALE-01" in str(error)


def test_a_late_reply_times_out_and_is_not_taken_for_the_next_answer(faulty_scale):
    def late_then_prompt(conn: socket.socket, n: int) -> bool:
        if n == 0:
            time.sleep(TIMEOUT_S + 0.3)  # after the client gave up
            conn.sendall(b"S S     999.99 g\r\n")
        else:
            conn.sendall(b"S S     100.00 g\r\n")
        return True

    scale = faulty_scale(late_then_prompt)
    error, elapsed = timed(lambda: scale.stable_weight(settle_timeout_s=0.1))
    assert isinstance(error, ScaleTimeout) and elapsed < TIMEOUT_S + 0.5
    time.sleep(0.4)  # the late answer arrives in the client's input buffer
    assert scale.stable_weight().raw_frames == ("S S     100.00 g",)


def test_a_disconnect_mid_weighing_is_a_connection_error(faulty_scale):
    # Motion on the first answer, then the line drops while the client waits to settle.
    scale = faulty_scale(lambda conn, n: n == 0 and (conn.sendall(b"S D     50.00 g\r\n") or True))
    error, elapsed = timed(lambda: scale.stable_weight(settle_timeout_s=2.0))
    assert isinstance(error, ScaleConnectionError) and "connection" in str(error)
    assert "SCALE-01" in str(error) and elapsed < 2.0 + TIMEOUT_S + 1.0


def test_a_silent_scale_fails_within_the_answer_timeout(faulty_scale):
    scale = faulty_scale(lambda _conn, _n: True)
    error, elapsed = timed(scale.identity)
    assert isinstance(error, ScaleTimeout) and "did not answer 'I2'" in str(error)
    assert elapsed < TIMEOUT_S + 0.5
