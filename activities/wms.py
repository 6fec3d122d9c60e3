"""WMS activities: the batch's calls to whichever WMS the worker was wired with.

Synchronous (blocking SQL or HTTP on the worker's thread pool). A business refusal
(`WmsError`: expired or held lot, wrong material, too little stock, ...) is raised as a
non-retryable `ApplicationError` whose `type` is the exception's class name, so the
workflow can tell the operator and open a deviation; `WmsUnavailable` stays retryable.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.keepalive import keeps_alive
from wms.messages import (
    Genealogy,
    GenealogyQuery,
    Issued,
    IssueRequest,
    LotStatusChanged,
    LotStatusRequest,
    OutputRecorded,
    OutputRequest,
    Picked,
    PickRequest,
    Reservation,
    ReserveRequest,
    Returned,
    ReturnRequest,
    ScanRequest,
    ScanResult,
)
from wms.port import ContractViolation, WmsError, WmsPort


class WmsActivities:
    def __init__(self, wms: WmsPort) -> None:
        self.wms = wms

    @activity.defn(name="wms_verify_scan")
    @keeps_alive
    def verify_scan(self, request: ScanRequest) -> ScanResult:
        with _business_errors():
            return self.wms.verify_scan(request)

    @activity.defn(name="wms_reserve")
    @keeps_alive
    def reserve(self, request: ReserveRequest) -> Reservation:
        with _business_errors():
            return self.wms.reserve(request)

    @activity.defn(name="wms_pick")
    @keeps_alive
    def pick(self, request: PickRequest) -> Picked:
        with _business_errors():
            return self.wms.pick(request)

    @activity.defn(name="wms_issue")
    @keeps_alive
    def issue(self, request: IssueRequest) -> Issued:
        with _business_errors():
            return self.wms.issue(request)

    @activity.defn(name="wms_return")
    @keeps_alive
    def return_material(self, request: ReturnRequest) -> Returned:
        with _business_errors():
            return self.wms.return_material(request)

    @activity.defn(name="wms_record_output")
    @keeps_alive
    def record_output(self, request: OutputRequest) -> OutputRecorded:
        with _business_errors():
            return self.wms.record_output(request)

    @activity.defn(name="wms_set_lot_status")
    @keeps_alive
    def set_lot_status(self, request: LotStatusRequest) -> LotStatusChanged:
        with _business_errors():
            return self.wms.set_lot_status(request)

    @activity.defn(name="wms_backward")
    @keeps_alive
    def backward(self, query: GenealogyQuery) -> Genealogy:
        with _business_errors():
            return self.wms.backward(query)


@contextmanager
def _business_errors() -> Iterator[None]:
    """A refusal will be refused again: fail now instead of retrying."""
    try:
        yield
    except (WmsError, ContractViolation) as exc:
        raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True) from exc
