"""`WmsPort` over HTTP for an external WMS: see `wms.http_common` for the exchange rules
and docs/wms-qms.md for the endpoints and message formats."""

from __future__ import annotations

import httpx

from wms import messages as m
from wms.http_common import HttpExchange
from wms.port import ERRORS, WmsError, WmsUnavailable

OPERATIONS = {
    "verify_scan": ("scan/verify", m.ScanResult),
    "reserve": ("reservations", m.Reservation),
    "pick": ("picks", m.Picked),
    "issue": ("issues", m.Issued),
    "return_material": ("returns", m.Returned),
    "record_output": ("outputs", m.OutputRecorded),
    "set_lot_status": ("lots/status", m.LotStatusChanged),
    "lot": ("lots/get", m.LotInfo),
    "forward": ("genealogy/forward", m.Genealogy),
    "backward": ("genealogy/backward", m.Genealogy),
}


class HttpWms:
    def __init__(self, base_url: str, *, timeout_s: float = 5.0,
                 headers: dict[str, str] | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.exchange = HttpExchange(
            base_url, system="WMS", version=m.MESSAGE_VERSION, errors=dict(ERRORS),
            business_error=WmsError, unavailable=WmsUnavailable, timeout_s=timeout_s,
            headers=headers, transport=transport)

    def close(self) -> None:
        self.exchange.close()

    def _call(self, name: str, request: object) -> object:
        path, result_type = OPERATIONS[name]
        return self.exchange.call(path, request, result_type)

    def verify_scan(self, request: m.ScanRequest) -> m.ScanResult:
        return self._call("verify_scan", request)  # type: ignore[return-value]

    def reserve(self, request: m.ReserveRequest) -> m.Reservation:
        return self._call("reserve", request)  # type: ignore[return-value]

    def pick(self, request: m.PickRequest) -> m.Picked:
        return self._call("pick", request)  # type: ignore[return-value]

    def issue(self, request: m.IssueRequest) -> m.Issued:
        return self._call("issue", request)  # type: ignore[return-value]

    def return_material(self, request: m.ReturnRequest) -> m.Returned:
        return self._call("return_material", request)  # type: ignore[return-value]

    def record_output(self, request: m.OutputRequest) -> m.OutputRecorded:
        return self._call("record_output", request)  # type: ignore[return-value]

    def set_lot_status(self, request: m.LotStatusRequest) -> m.LotStatusChanged:
        return self._call("set_lot_status", request)  # type: ignore[return-value]

    def lot(self, query: m.LotQuery) -> m.LotInfo:
        return self._call("lot", query)  # type: ignore[return-value]

    def forward(self, query: m.GenealogyQuery) -> m.Genealogy:
        return self._call("forward", query)  # type: ignore[return-value]

    def backward(self, query: m.GenealogyQuery) -> m.Genealogy:
        return self._call("backward", query)  # type: ignore[return-value]
