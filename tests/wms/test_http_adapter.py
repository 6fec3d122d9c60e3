"""The HTTP WMS adapter against a fake WMS on loopback: idempotency and version headers,
business refusals by name, retryable vs not, timeouts, and response validation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.wms.fake_server import FakeServer, Fault, serve
from wms import messages as m
from wms.builtin import BuiltinWms
from wms.http_adapter import HttpWms
from wms.port import ContractViolation, LotOnHold, WmsError, WmsUnavailable

ISSUE = m.IssueRequest(key=m.issue_key("B-1", "p#1", 1), batch_id="B-1", phase_instance="p#1",
                       line=1, material_code="RM-ASC", lot_number="ASC-2601", quantity="1.2",
                       unit="kg", actor="olivia")


@pytest.fixture
def fake(wms: BuiltinWms) -> Iterator[FakeServer]:
    routes = {
        "issues": (wms.issue, m.IssueRequest),
        "lots/get": (wms.lot, m.LotQuery),
        "genealogy/backward": (wms.backward, m.GenealogyQuery),
    }
    with serve(FakeServer(routes=routes, business_errors=(WmsError,))) as server:
        yield server


@pytest.fixture
def adapter(fake: FakeServer) -> Iterator[HttpWms]:
    client = HttpWms(fake.url, timeout_s=0.5)
    yield client
    client.close()


def test_issue_round_trip_carries_key_and_version_and_posts_once(adapter, fake):
    first = adapter.issue(ISSUE)
    again = adapter.issue(ISSUE)
    assert (first.replayed, again.replayed) == (False, True)
    assert adapter.lot(m.LotQuery("ASC-2601")).on_hand == "23.8"
    _, headers, body = fake.seen[0]
    assert headers["Idempotency-Key"] == "issue:B-1:p#1:1"
    assert headers["X-Ebr-Message-Version"] == m.MESSAGE_VERSION
    assert body["quantity"] == "1.2"
    links = adapter.backward(m.GenealogyQuery("B-1")).links
    assert [(x.input_lot, x.quantity) for x in links] == [("ASC-2601", "1.2")]
    # Queries carry a key too: the same question, the same key.
    adapter.lot(m.LotQuery("ASC-2601"))
    query_keys = [h["Idempotency-Key"] for path, h, _ in fake.seen if path == "lots/get"]
    assert len(query_keys) == 2 and query_keys[0] == query_keys[1]
    assert query_keys[0].startswith("query:lots/get:")
    assert all(h["X-Ebr-Message-Version"] == "1" for _, h, _ in fake.seen)


def test_business_refusal_is_raised_by_name_with_the_wms_message(adapter, wms):
    wms.set_lot_status(m.LotStatusRequest(key="h", lot_number="ASC-2601", status=m.ON_HOLD,
                                          reason="OOS", actor="quinn"))
    with pytest.raises(LotOnHold, match="ASC-2601 is on hold"):
        adapter.issue(ISSUE)


def test_server_errors_are_retryable_and_the_retry_applies_once(adapter, fake):
    fake.faults["issues"] = [Fault(status=503, body={"error": "busy"})]
    with pytest.raises(WmsUnavailable, match="503"):
        adapter.issue(ISSUE)
    assert adapter.issue(ISSUE).replayed is False
    fake.faults["issues"] = [Fault(status=429, body={})]
    with pytest.raises(WmsUnavailable, match="429"):
        adapter.issue(ISSUE)


def test_a_slow_wms_times_out_as_retryable(adapter, fake):
    fake.faults["issues"] = [Fault(status=200, body={}, delay_s=1.5)]
    with pytest.raises(WmsUnavailable, match="in time"):
        adapter.issue(ISSUE)


def test_unreachable_wms_is_retryable():
    client = HttpWms("http://127.0.0.1:9/v1", timeout_s=0.5)
    with pytest.raises(WmsUnavailable, match="could not be reached"):
        client.issue(ISSUE)
    client.close()


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (Fault(body={"key": "k", "batch_id": "B-1"}), "missing field 'lot_number'"),
        (Fault(body={"key": "k", "batch_id": "B-1", "lot_number": "L", "quantity": 1.2,
                     "unit": "kg", "replayed": False}), "quantity: expected a string"),
        (Fault(body={"key": "k", "batch_id": "B-1", "lot_number": "L", "quantity": "1",
                     "unit": "kg", "extra": 1}), "unexpected field"),
        (Fault(body="<html>", version="1"), "not JSON"),
        (Fault(body={}, version="2"), "message version '2'"),
        (Fault(status=302, body={}), "status 302"),
    ],
)
def test_malformed_answers_are_contract_violations_not_retried(adapter, fake, fault, message):
    fake.faults["issues"] = [fault]
    with pytest.raises(ContractViolation, match=message):
        adapter.issue(ISSUE)
