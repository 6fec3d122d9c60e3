"""`QmsPort` over HTTP for an external QMS: the exchange rules of `wms.http_common`,
endpoints and message formats in docs/wms-qms.md."""

from __future__ import annotations

import httpx

from qms import messages as q
from qms.port import ERRORS, QmsError, QmsUnavailable
from wms.http_common import HttpExchange

OPERATIONS = {
    "open_deviation": ("deviations/open", q.DeviationRef),
    "add_note": ("deviations/notes", q.DeviationRef),
    "disposition": ("deviations/disposition", q.DeviationRef),
    "deviation": ("deviations/get", q.Deviation),
    "open_deviations": ("deviations/open-for-batch", q.OpenDeviations),
    "hold_lot": ("lots/hold", q.LotStatusChanged),
    "release_lot": ("lots/release", q.LotStatusChanged),
}


class HttpQms:
    def __init__(self, base_url: str, *, timeout_s: float = 5.0,
                 headers: dict[str, str] | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.exchange = HttpExchange(
            base_url, system="QMS", version=q.MESSAGE_VERSION, errors=dict(ERRORS),
            business_error=QmsError, unavailable=QmsUnavailable, timeout_s=timeout_s,
            headers=headers, transport=transport)

    def close(self) -> None:
        self.exchange.close()

    def _call(self, name: str, request: object) -> object:
        path, result_type = OPERATIONS[name]
        return self.exchange.call(path, request, result_type)

    def open_deviation(self, request: q.OpenDeviationRequest) -> q.DeviationRef:
        return self._call("open_deviation", request)  # type: ignore[return-value]

    def add_note(self, request: q.NoteRequest) -> q.DeviationRef:
        return self._call("add_note", request)  # type: ignore[return-value]

    def disposition(self, request: q.DispositionRequest) -> q.DeviationRef:
        return self._call("disposition", request)  # type: ignore[return-value]

    def deviation(self, query: q.DeviationQuery) -> q.Deviation:
        return self._call("deviation", query)  # type: ignore[return-value]

    def open_deviations(self, query: q.OpenDeviationsQuery) -> q.OpenDeviations:
        return self._call("open_deviations", query)  # type: ignore[return-value]

    def hold_lot(self, request: q.LotHoldRequest) -> q.LotStatusChanged:
        return self._call("hold_lot", request)  # type: ignore[return-value]

    def release_lot(self, request: q.LotReleaseRequest) -> q.LotStatusChanged:
        return self._call("release_lot", request)  # type: ignore[return-value]
