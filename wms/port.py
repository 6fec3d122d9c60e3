"""The WMS port: what a batch needs from a warehouse, whoever implements it.

Implementations: `wms.builtin.BuiltinWms` (ebr's own tables) and `wms.http_adapter.HttpWms`
(an external WMS). Synchronous on purpose: activities call it on the worker's thread pool.

Refusals are `WmsError` subclasses with a message an operator can act on; the activity
layer turns them into non-retryable `ApplicationError`s whose `type` is the class name,
which the workflow matches (e.g. to open a deviation on `LotExpired`). `WmsUnavailable`
is the one retryable failure: the WMS could not be reached or answered 5xx.

Standard library only, so the workflow sandbox may import the exception names.
"""

from __future__ import annotations

from typing import Protocol

from wms.messages import (
    Genealogy,
    GenealogyQuery,
    Issued,
    IssueRequest,
    LotInfo,
    LotQuery,
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


class WmsError(Exception):
    """A business refusal: retrying the same request gets the same answer."""


class UnknownMaterial(WmsError):
    pass


class UnknownLot(WmsError):
    pass


class UnknownBin(WmsError):
    pass


class WrongMaterial(WmsError):
    pass


class WrongLot(WmsError):
    pass


class LotExpired(WmsError):
    pass


class LotOnHold(WmsError):
    pass


class LotNotReleased(WmsError):
    """Quarantined, rejected or past its retest date."""


class InsufficientStock(WmsError):
    pass


class BadScan(WmsError):
    """Unreadable label, wrong check digit, or a label that contradicts the WMS record."""


class BadQuantity(WmsError):
    """Not a positive number, or a unit that does not convert to the material's unit."""


class IdempotencyConflict(WmsError):
    """The key was used before for a different request."""


class WmsUnavailable(Exception):
    """Transient: the WMS did not answer in time or answered 5xx/429. Retry."""


class ContractViolation(Exception):
    """The other side answered something this message version does not allow. Not retried:
    it needs a person to fix the interface, not another attempt."""


# Every refusal by name, so adapters can re-raise an error a remote system reported.
ERRORS: dict[str, type[WmsError]] = {
    cls.__name__: cls
    for cls in (
        WmsError, UnknownMaterial, UnknownLot, UnknownBin, WrongMaterial, WrongLot,
        LotExpired, LotOnHold, LotNotReleased, InsufficientStock, BadScan, BadQuantity,
        IdempotencyConflict,
    )
}  # fmt: skip


class WmsPort(Protocol):
    def verify_scan(self, request: ScanRequest) -> ScanResult: ...

    def reserve(self, request: ReserveRequest) -> Reservation: ...

    def pick(self, request: PickRequest) -> Picked: ...

    def issue(self, request: IssueRequest) -> Issued: ...

    def return_material(self, request: ReturnRequest) -> Returned: ...

    def record_output(self, request: OutputRequest) -> OutputRecorded: ...

    def set_lot_status(self, request: LotStatusRequest) -> LotStatusChanged: ...

    def lot(self, query: LotQuery) -> LotInfo: ...

    def forward(self, query: GenealogyQuery) -> Genealogy: ...

    def backward(self, query: GenealogyQuery) -> Genealogy: ...
