"""QMS activities: deviations and lot holds from the batch, through the wired QMS.

Business refusals (`QmsError`) become non-retryable `ApplicationError`s typed with the
exception's class name; `QmsUnavailable` stays retryable. The workflow asks
`qms_open_deviations` before QA may sign release.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.keepalive import keeps_alive
from qms.messages import (
    DeviationRef,
    DispositionRequest,
    LotHoldRequest,
    LotStatusChanged,
    NoteRequest,
    OpenDeviationRequest,
    OpenDeviations,
    OpenDeviationsQuery,
)
from qms.port import QmsError, QmsPort
from wms.port import ContractViolation, WmsError


class QmsActivities:
    def __init__(self, qms: QmsPort) -> None:
        self.qms = qms

    @activity.defn(name="qms_open_deviation")
    @keeps_alive
    def open_deviation(self, request: OpenDeviationRequest) -> DeviationRef:
        with _business_errors():
            return self.qms.open_deviation(request)

    @activity.defn(name="qms_add_note")
    @keeps_alive
    def add_note(self, request: NoteRequest) -> DeviationRef:
        with _business_errors():
            return self.qms.add_note(request)

    @activity.defn(name="qms_disposition")
    @keeps_alive
    def disposition(self, request: DispositionRequest) -> DeviationRef:
        with _business_errors():
            return self.qms.disposition(request)

    @activity.defn(name="qms_open_deviations")
    @keeps_alive
    def open_deviations(self, query: OpenDeviationsQuery) -> OpenDeviations:
        with _business_errors():
            return self.qms.open_deviations(query)

    @activity.defn(name="qms_hold_lot")
    @keeps_alive
    def hold_lot(self, request: LotHoldRequest) -> LotStatusChanged:
        with _business_errors():
            return self.qms.hold_lot(request)


@contextmanager
def _business_errors() -> Iterator[None]:
    try:
        yield
    except (QmsError, WmsError, ContractViolation) as exc:
        raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True) from exc
