"""End to end, as a user runs it: `ebr demo` and `ebr up` as real processes.

The demo drives the real HTTP API against the embedded Temporal dev server, the
simulated MT-SICS scale on a pseudo-terminal and the simulated Modbus mixer; the
signed eBMR it produces is then validated with pyHanko, independently of ebr.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleTrustManager

from runtime.seed import demo_user
from tests.stack_rig import free_port

pytestmark = pytest.mark.slow
EBR = [sys.executable, "-m", "cli.main"]


def port_closed(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture
def stack_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EBR_")}
    env.update(
        EBR_VAR_DIR=str(tmp_path / "var"),
        EBR_API_PORT=str(free_port()),
        EBR_TEMPORAL_PORT=str(free_port()),
        EBR_TEMPORAL_UI_PORT=str(free_port()),
    )
    return env


def ports(env: dict[str, str]) -> list[int]:
    return [int(env[k]) for k in ("EBR_API_PORT", "EBR_TEMPORAL_PORT", "EBR_TEMPORAL_UI_PORT")]


def run_demo(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EBR, "demo"], env=env, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)


def validate_with_pyhanko(pdf: bytes, root_pem: Path) -> dict:
    from asn1crypto import pem, x509

    _, _, der = pem.unarmor(root_pem.read_bytes())
    root = x509.Certificate.load(der)
    reader = PdfFileReader(io.BytesIO(pdf))
    # The system's certification, then QA's approval signature over the whole file.
    certification, approval = reader.embedded_signatures
    context = ValidationContext(trust_manager=SimpleTrustManager.build(trust_roots=[root]),
                                allow_fetching=False)
    first = validate_pdf_signature(certification, context)
    assert first.intact and first.valid and first.trusted and first.docmdp_ok
    assert first.coverage.name == "ENTIRE_REVISION"
    assert first.modification_level.name == "FORM_FILLING"  # the approval filled its field
    status = validate_pdf_signature(approval, context)
    assert status.intact and status.valid and status.trusted
    assert status.coverage.name == "ENTIRE_FILE"
    assert str(approval.sig_object["/Name"])  # names the QA signer
    return status.summary()


@pytest.fixture
def running_stack(stack_env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([*EBR, "up"], env=stack_env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    wait_healthy(stack_env, proc)
    yield proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)


def wait_healthy(env: dict[str, str], proc: subprocess.Popen[str], timeout_s: float = 120) -> None:
    url = f"http://127.0.0.1:{env['EBR_API_PORT']}/healthz"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"ebr up exited early:\n{proc.stdout.read()}")  # type: ignore[union-attr]
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("ebr up did not become healthy")


def test_demo_on_a_fresh_checkout_runs_a_batch_to_a_signed_pdf_and_stops_what_it_started(
    stack_env,
):
    result = run_demo(stack_env)
    assert result.returncode == 0, result.stdout + result.stderr
    last_line = result.stdout.strip().splitlines()[-1]
    pdf_path = Path(last_line)
    assert pdf_path.is_absolute() and pdf_path.suffix == ".pdf" and pdf_path.exists()

    pdf = pdf_path.read_bytes()
    validate_with_pyhanko(pdf, Path(stack_env["EBR_VAR_DIR"]) / "pki" / "root.pem")
    assert b"pdfaid:part" in pdf  # PDF/A identification in the XMP metadata

    from reports.verify import verify_pdf

    check = verify_pdf(pdf, Path(stack_env["EBR_VAR_DIR"]) / "pki" / "root.pem")
    assert check.ok and check.record is not None
    record = check.record
    assert record["batch"]["state"] == "released"
    assert [s["kind"] for s in record["steps"]] == [
        "weigh", "weigh", "instruction", "mix", "check", "instruction"
    ]
    assert all(s["signature"]["meaning"] == "performed" for s in record["steps"])
    assert record["release"]["signature"]["username"] == "qa"
    assert record["steps"][0]["device"]["raw_frames"][-1].startswith("S S")
    assert all(port_closed(p) for p in ports(stack_env))


def test_up_serves_the_demo_stops_on_ctrl_c_and_keeps_data_across_restarts(
    stack_env, running_stack
):
    result = run_demo(stack_env)
    assert result.returncode == 0, result.stdout + result.stderr
    batch_id = Path(result.stdout.strip().splitlines()[-1]).stem
    api = f"http://127.0.0.1:{stack_env['EBR_API_PORT']}"
    assert httpx.get(f"{api}/healthz").status_code == 200  # the demo left `ebr up` running

    running_stack.send_signal(signal.SIGINT)
    assert running_stack.wait(timeout=60) == 0
    banner = running_stack.stdout.read()  # type: ignore[union-attr]
    assert api in banner and demo_user("operator").password in banner
    assert all(port_closed(p) for p in ports(stack_env))

    again = subprocess.Popen([*EBR, "up"], env=stack_env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    try:
        wait_healthy(stack_env, again)
        user = demo_user("auditor")
        token = httpx.post(f"{api}/api/v1/auth/login",
                           json={"username": user.username, "password": user.password}
                           ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        batch = httpx.get(f"{api}/api/v1/batches/{batch_id}", headers=headers, timeout=30)
        assert batch.status_code == 200, batch.text
        assert batch.json()["state"] == "released"
        assert batch.json()["execution"]["state"] == "released"  # Temporal kept its history
        record = httpx.get(f"{api}/api/v1/batches/{batch_id}/record", headers=headers).json()
        performed = [s for s in record["steps"] if s["signature"]["meaning"] == "performed"]
        assert len(performed) == 6
    finally:
        again.send_signal(signal.SIGINT)
        again.wait(timeout=60)
