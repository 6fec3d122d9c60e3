"""The HTTP QMS adapter against a fake QMS on loopback: a deviation opened, listed and
dispositioned with its e-signature crossing the wire; refusals by name; retryable 5xx."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from qms import messages as q
from qms.builtin import BuiltinQms
from qms.http_adapter import HttpQms
from qms.port import DispositionRefused, QmsError, QmsUnavailable
from tests.qms.conftest import signature
from tests.wms.fake_server import FakeServer, Fault, serve


@pytest.fixture
def adapter(qms: BuiltinQms) -> Iterator[tuple[HttpQms, FakeServer]]:
    routes = {
        "deviations/open": (qms.open_deviation, q.OpenDeviationRequest),
        "deviations/notes": (qms.add_note, q.NoteRequest),
        "deviations/disposition": (qms.disposition, q.DispositionRequest),
        "deviations/open-for-batch": (qms.open_deviations, q.OpenDeviationsQuery),
    }
    with serve(FakeServer(routes=routes, business_errors=(QmsError,))) as fake:
        client = HttpQms(fake.url, timeout_s=0.5)
        yield client, fake
        client.close()


def test_deviation_lifecycle_over_http(adapter):
    client, fake = adapter
    request = q.OpenDeviationRequest(key=q.deviation_key("B-1", "p#1", "weight"),
                                     batch_id="B-1", phase_instance="p#1",
                                     classification=q.MINOR, title="Overshoot",
                                     description="1203 g for 1200 g", actor="workflow",
                                     lots=["ASC-2601"], origin=q.AUTOMATIC)
    ref = client.open_deviation(request)
    assert client.open_deviation(request).replayed
    assert fake.seen[0][1]["Idempotency-Key"] == "deviation:B-1:p#1:weight"
    listed = client.open_deviations(q.OpenDeviationsQuery("B-1")).deviations
    assert [(d.deviation_id, d.lots) for d in listed] == [(ref.deviation_id, ["ASC-2601"])]
    with pytest.raises(DispositionRefused, match="QA role"):
        client.disposition(q.DispositionRequest(key="d-0", deviation_id=ref.deviation_id,
                                                disposition=q.ACCEPT, rationale="ok",
                                                signature=signature("sam", ["supervisor"])))
    done = client.disposition(q.DispositionRequest(key="d-1", deviation_id=ref.deviation_id,
                                                   disposition=q.ACCEPT, rationale="ok",
                                                   signature=signature("quinn", ["qa"])))
    assert done.status == q.CLOSED
    assert client.open_deviations(q.OpenDeviationsQuery("B-1")).deviations == []


def test_qms_outage_is_retryable(adapter):
    client, fake = adapter
    fake.faults["deviations/open-for-batch"] = [Fault(status=502, body={})]
    with pytest.raises(QmsUnavailable, match="502"):
        client.open_deviations(q.OpenDeviationsQuery("B-1"))
    assert client.open_deviations(q.OpenDeviationsQuery("B-1")).deviations == []
