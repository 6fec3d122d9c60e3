"""Data crossing the QMS boundary: port, activity and HTTP message I/O.

Standard library plus the pure `workflows.messages` (for `SignatureIntent`) and
`wms.messages` (lot status results), so the workflow sandbox can import it.
Every write carries `key`, an idempotency key chosen by the caller; for a deviation the
workflow opens on an excursion, `deviation_key(batch_id, phase_instance, reason)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wms.messages import LotStatusChanged
from workflows.messages import SignatureIntent

MESSAGE_VERSION = "1"

MINOR, MAJOR, CRITICAL = "minor", "major", "critical"
CLASSIFICATIONS = (MINOR, MAJOR, CRITICAL)
ACCEPT, REJECT, REWORK = "accept", "reject", "rework"
DISPOSITIONS = (ACCEPT, REJECT, REWORK)
OPEN, INVESTIGATING, CLOSED = "open", "investigating", "closed"
AUTOMATIC, OPERATOR_RAISED = "automatic", "operator"

__all__ = ["LotStatusChanged", "SignatureIntent"]


def deviation_key(batch_id: str, phase_instance: str, reason: str) -> str:
    """One deviation per batch, phase instance and reason, however often it is raised."""
    return f"deviation:{batch_id}:{phase_instance}:{reason}"


@dataclass(frozen=True)
class OpenDeviationRequest:
    key: str
    batch_id: str
    phase_instance: str
    classification: str  # minor | major | critical
    title: str
    description: str
    actor: str
    lots: list[str] = field(default_factory=list)
    origin: str = OPERATOR_RAISED  # automatic (excursion) | operator


@dataclass(frozen=True)
class DeviationRef:
    key: str
    deviation_id: str  # DEV-000001
    status: str
    replayed: bool = False


@dataclass(frozen=True)
class NoteRequest:
    """An investigation note; the first one moves the deviation to investigating."""

    key: str
    deviation_id: str
    note: str
    actor: str


@dataclass(frozen=True)
class DispositionRequest:
    """QA's signed decision. Major and critical deviations need a CAPA reference."""

    key: str
    deviation_id: str
    disposition: str  # accept | reject | rework
    rationale: str
    signature: SignatureIntent
    capa_ref: str = ""


@dataclass(frozen=True)
class DeviationQuery:
    deviation_id: str


@dataclass(frozen=True)
class Note:
    note: str
    author: str
    at: str


@dataclass(frozen=True)
class Deviation:
    deviation_id: str
    batch_id: str
    phase_instance: str
    classification: str
    title: str
    description: str
    status: str
    origin: str
    opened_by: str
    opened_at: str
    lots: list[str] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    disposition: str = ""
    rationale: str = ""
    capa_ref: str = ""
    disposition_by: str = ""
    disposition_at: str = ""
    signature_hash: str = ""


@dataclass(frozen=True)
class OpenDeviationsQuery:
    batch_id: str


@dataclass(frozen=True)
class OpenDeviations:
    """Deviations of a batch not yet dispositioned: the batch may not be released."""

    batch_id: str
    deviations: list[Deviation] = field(default_factory=list)


@dataclass(frozen=True)
class LotHoldRequest:
    key: str
    lot_number: str
    reason: str
    actor: str
    deviation_id: str = ""


@dataclass(frozen=True)
class LotReleaseRequest:
    """QA releases a quarantined or held lot; a lot named in an open deviation stays held."""

    key: str
    lot_number: str
    reason: str
    signature: SignatureIntent
