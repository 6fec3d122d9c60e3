"""`ebr erp relay` as its own process: it delivers a finished batch's confirmation to the
fake ERP, stops cleanly on SIGTERM, refuses to run without EBR_ERP_URL, and `ebr up`
starts it when EBR_ERP_URL is set."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from sqlmodel import Session, select
from typer.testing import CliRunner

from cli.main import app
from runtime.processes import ebr_command
from runtime.stack import start_stack
from settings.config import Settings
from store.db import create_schema, make_engine
from tests.stack_rig import free_port
from tests.wms.fake_erp import FakeErp, serve_erp
from tests.wms.test_erp import REQUEST, batch_row, set_state
from wms.erp import create_process_order, start_order
from wms.models import OutboxMessage, ProcessOrder
from wms.seed import seed_inventory


def _env(var_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EBR_")}
    return {**env, "EBR_VAR_DIR": str(var_dir), **extra}


def test_relay_process_delivers_and_stops_on_sigterm(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'ebr.db'}")
    create_schema(engine)
    seed_inventory(engine)
    create_process_order(engine, json.dumps(REQUEST), "erp")
    batch_row(engine, "B-1", "running")
    start_order(engine, "PO-4711", "B-1", "sam")
    set_state(engine, "B-1", "released")
    with serve_erp(FakeErp()) as erp:
        relay = subprocess.Popen(
            ebr_command("erp", "relay"), cwd=Path(__file__).parents[2],
            env=_env(tmp_path, EBR_ERP_URL=erp.url, EBR_ERP_POLL_S="0.1"),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            assert erp.received.wait(timeout=60), relay.stderr
        finally:
            relay.send_signal(signal.SIGTERM)
            _, err = relay.communicate(timeout=30)
    assert relay.returncode == 0, err.decode()
    assert list(erp.ledger) == ["confirmation:B-1"]
    with Session(engine) as s:
        assert s.exec(select(OutboxMessage)).one().status == "delivered"
        assert s.exec(select(ProcessOrder)).one().status == "confirmed"
    engine.dispose()


def test_relay_without_an_erp_url_exits_2(tmp_path, monkeypatch):
    for key in [k for k in os.environ if k.startswith("EBR_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("EBR_VAR_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["erp", "relay"])
    assert result.exit_code == 2
    assert "EBR_ERP_URL is not set" in result.output


def test_ebr_up_runs_the_relay_when_an_erp_url_is_set(tmp_path, monkeypatch):
    """The stack without Temporal or simulators (a real scale address, an unreachable
    Temporal frontend): enough to see `ebr up` start a relay that delivers."""
    var = tmp_path / "var"
    var.mkdir()
    register = (Path(__file__).parents[2] / "devices" / "equipment.yaml").read_text()
    scale = register[register.index("  SCALE-01:"):register.index("  MIXER-01:")]
    (var / "equipment.yaml").write_text(
        "ebr_equipment: 1\n\nequipment:\n"
        + scale.replace("url: simulator", "url: socket://127.0.0.1:9"))
    with serve_erp(FakeErp()) as erp:
        for key in [k for k in os.environ if k.startswith("EBR_")]:
            monkeypatch.delenv(key)
        env = {"EBR_VAR_DIR": str(var), "EBR_API_PORT": str(free_port()),
               "EBR_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}", "EBR_ERP_URL": erp.url,
               "EBR_ERP_POLL_S": "0.2"}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        settings = Settings(_env_file=None)
        group = start_stack(settings)
        try:
            assert "erp-relay" in [c.name for c in group.children]
            engine = make_engine(settings.resolved_database_url)
            create_process_order(engine, json.dumps(REQUEST), "erp")
            batch_row(engine, "B-1", "released")
            start_order(engine, "PO-4711", "B-1", "sam")
            assert erp.received.wait(timeout=120), "the relay of `ebr up` delivered nothing"
            engine.dispose()
        finally:
            group.stop()
    assert list(erp.ledger) == ["confirmation:B-1"]
