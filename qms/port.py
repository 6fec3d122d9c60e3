"""The QMS port: deviations, their signed disposition, and lot holds/releases.

Implementations: `qms.builtin.BuiltinQms` and `qms.http_adapter.HttpQms`. Synchronous:
activities call it on the worker's thread pool. Refusals are `QmsError` subclasses,
turned into non-retryable `ApplicationError`s of the same type name by the activities.
"""

from __future__ import annotations

from typing import Protocol

from qms.messages import (
    Deviation,
    DeviationQuery,
    DeviationRef,
    DispositionRequest,
    LotHoldRequest,
    LotReleaseRequest,
    LotStatusChanged,
    NoteRequest,
    OpenDeviationRequest,
    OpenDeviations,
    OpenDeviationsQuery,
)


class QmsError(Exception):
    """A business refusal: the same request is refused again."""


class UnknownDeviation(QmsError):
    pass


class DeviationClosed(QmsError):
    pass


class DispositionRefused(QmsError):
    """Missing rationale or CAPA, a signer without QA role, or the opener signing."""


class LotHasOpenDeviation(QmsError):
    pass


class InvalidDeviation(QmsError):
    pass


class QmsIdempotencyConflict(QmsError):
    pass


class QmsUnavailable(Exception):
    """Transient: the QMS did not answer in time or answered 5xx/429. Retry."""


ERRORS: dict[str, type[QmsError]] = {
    cls.__name__: cls
    for cls in (
        QmsError, UnknownDeviation, DeviationClosed, DispositionRefused,
        LotHasOpenDeviation, InvalidDeviation, QmsIdempotencyConflict,
    )
}  # fmt: skip


class QmsPort(Protocol):
    def open_deviation(self, request: OpenDeviationRequest) -> DeviationRef: ...

    def add_note(self, request: NoteRequest) -> DeviationRef: ...

    def disposition(self, request: DispositionRequest) -> DeviationRef: ...

    def deviation(self, query: DeviationQuery) -> Deviation: ...

    def open_deviations(self, query: OpenDeviationsQuery) -> OpenDeviations: ...

    def hold_lot(self, request: LotHoldRequest) -> LotStatusChanged: ...

    def release_lot(self, request: LotReleaseRequest) -> LotStatusChanged: ...
