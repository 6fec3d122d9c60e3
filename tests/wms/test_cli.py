"""`ebr wms genealogy forward|backward`, `ebr wms lots`, `ebr qms deviations` and
`ebr erp order|orders|outbox`."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from cli.main import app
from qms import messages as q
from qms.builtin import BuiltinQms
from store.db import create_schema, make_engine
from tests.databases import record_store_url
from wms import messages as m
from wms.builtin import BuiltinWms
from wms.erp import enqueue_confirmation
from wms.seed import seed_inventory

runner = CliRunner()


def _store(tmp_path, monkeypatch) -> BuiltinWms:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("EBR_VAR_DIR", str(tmp_path))
    engine = make_engine(record_store_url(tmp_path))
    create_schema(engine)
    seed_inventory(engine)
    wms = BuiltinWms(engine)
    wms.issue(m.IssueRequest(key="i-1", batch_id="B-9", phase_instance="p#1", line=1,
                             material_code="RM-ASC", lot_number="ASC-2601", quantity="1.2",
                             unit="kg", actor="olivia"))
    wms.record_output(m.OutputRequest(key="o-1", batch_id="B-9", material_code="VC-BLEND-500",
                                      lot_number="VC-0009", quantity="2", unit="kg",
                                      to_bin="FG-01", actor="sam"))
    return wms


def test_genealogy_both_ways_from_the_command_line(tmp_path, monkeypatch):
    _store(tmp_path, monkeypatch)
    forward = runner.invoke(app, ["wms", "genealogy", "forward", "ASC-2601"])
    assert forward.exit_code == 0, forward.output
    assert "B-9" in forward.output and "VC-0009" in forward.output
    backward = runner.invoke(app, ["wms", "genealogy", "backward", "VC-0009", "--json"])
    assert backward.exit_code == 0, backward.output
    links = json.loads(backward.output)["links"]
    assert [(x["input_lot"], x["quantity"]) for x in links] == [("ASC-2601", "1.2")]


def test_unknown_lot_exits_1_with_the_reason(tmp_path, monkeypatch):
    _store(tmp_path, monkeypatch)
    result = runner.invoke(app, ["wms", "genealogy", "forward", "NOPE"])
    assert result.exit_code == 1
    assert "Lot 'NOPE' is not in the WMS" in result.output


def test_lots_and_deviations_are_listed(tmp_path, monkeypatch):
    wms = _store(tmp_path, monkeypatch)
    BuiltinQms(wms.engine, wms).open_deviation(q.OpenDeviationRequest(
        key="d", batch_id="B-9", phase_instance="p#1", classification=q.MINOR,
        title="Label torn", description="torn", actor="sam"))
    lots = runner.invoke(app, ["wms", "lots", "--material", "RM-ASC"])
    assert "ASC-2603" in lots.output and "on_hold" in lots.output
    devs = runner.invoke(app, ["qms", "deviations", "--batch", "B-9"])
    assert devs.exit_code == 0 and "DEV-000001" in devs.output and "Label torn" in devs.output


def test_erp_orders_and_outbox_from_the_command_line(tmp_path, monkeypatch):
    wms = _store(tmp_path, monkeypatch)
    request = tmp_path / "po.json"
    request.write_text(json.dumps({
        "order_id": "PO-9", "product": {"code": "VC-BLEND-500"},
        "quantity": {"value": "2", "unit": "kg"}, "due": "2026-12-01",
        "recipe": {"id": "VC-BLEND"}}))
    first = runner.invoke(app, ["erp", "order", str(request)])
    again = runner.invoke(app, ["erp", "order", str(request)])
    assert (first.output.strip(), again.output.strip()) == ("PO-9: created",
                                                            "PO-9: already received")
    listed = runner.invoke(app, ["erp", "orders", "--json"])
    assert json.loads(listed.output)[0]["status"] == "received"
    request.write_text("{}")
    refused = runner.invoke(app, ["erp", "order", str(request)])
    assert refused.exit_code == 1 and "lacks 'order_id'" in refused.output
    enqueue_confirmation(wms.engine, wms, order_id="PO-9", batch_id="B-9", good="2",
                         scrap="0", unit="kg", actor="erp-relay")
    out = runner.invoke(app, ["erp", "outbox", "--status", "pending"])
    assert "confirmation:B-9" in out.output and "pending" in out.output


def test_with_auto_upgrade_off_an_old_schema_is_refused_with_what_to_run(tmp_path, monkeypatch):
    # Production (EBR_DB_AUTO_UPGRADE off): a command must not migrate the plant's database
    # behind the administrator's back, nor crash with a traceback.
    monkeypatch.setenv("EBR_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("EBR_DB_AUTO_UPGRADE", "false")
    url = record_store_url(tmp_path)
    if url.startswith("postgresql"):
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM alembic_version")
        engine.dispose()
    for command in (["wms", "lots"], ["qms", "deviations"], ["erp", "orders"]):
        result = runner.invoke(app, command)
        assert result.exit_code != 0, command
        assert "ebr db upgrade" in str(result.exception or result.output), command
        assert not isinstance(result.exception, Exception) or isinstance(
            result.exception, SystemExit), result.exception
