"""Data crossing the WMS boundary: port, activity and HTTP message I/O.

Standard library only, so the workflow sandbox can import it. One dataclass in and one
out for every call. Quantities are Decimal strings ("1200.00") with their unit: binary
floats never carry an amount, and the receiver converts with pint.

Every write carries `key`, an idempotency key chosen by the caller. For an issue to a
batch it is `issue_key(batch_id, phase_instance, line)`, so a retried activity, a
re-sent HTTP request or a worker crash between write and reply posts the issue once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Version of these message shapes on the wire (header X-Ebr-Message-Version).
MESSAGE_VERSION = "1"

# Lot statuses.
QUARANTINE = "quarantine"
RELEASED = "released"
ON_HOLD = "on_hold"
REJECTED = "rejected"
EXPIRED = "expired"
LOT_STATUSES = (QUARANTINE, RELEASED, ON_HOLD, REJECTED, EXPIRED)


def issue_key(batch_id: str, phase_instance: str, line: int | str) -> str:
    """The idempotency key of one material line of one phase instance of one batch."""
    return f"issue:{batch_id}:{phase_instance}:{line}"


@dataclass(frozen=True)
class Quantity:
    value: str  # Decimal as text
    unit: str


# --- scan verification --------------------------------------------------------------


@dataclass(frozen=True)
class ScanRequest:
    """An operator's scan of a GS1-128 or DataMatrix label, checked against what is due.

    `raw` is the element string as the scanner sends it (with `]C1`/`]d2` and FNC1 as
    GS, `\\x1d`) or the bracketed text printed under the barcode, `(01)…(10)…`.
    """

    raw: str
    material_code: str  # the material the phase needs
    expected_lot: str = ""  # a lot already reserved/picked for this line, if any


@dataclass(frozen=True)
class ScanResult:
    material_code: str
    lot_number: str
    gtin: str
    expiry: str  # ISO date from the WMS lot record ('' when the lot has none)
    sscc: str
    lot_status: str


# --- reservation, pick, issue, return -------------------------------------------------


@dataclass(frozen=True)
class PickLine:
    lot_number: str
    bin_code: str
    quantity: str
    unit: str
    expiry: str  # ISO date or ''


@dataclass(frozen=True)
class ReserveRequest:
    """Reserve `quantity` of a material for one line of a phase, FEFO across lots."""

    key: str
    batch_id: str
    phase_instance: str
    line: int
    material_code: str
    quantity: str
    unit: str
    actor: str


@dataclass(frozen=True)
class Reservation:
    key: str
    material_code: str
    picks: list[PickLine] = field(default_factory=list)  # FEFO order, may span lots
    replayed: bool = False


@dataclass(frozen=True)
class PickRequest:
    """Move reserved material of one lot from its bin to a staging bin for the batch."""

    key: str
    batch_id: str
    phase_instance: str
    line: int
    lot_number: str
    from_bin: str
    to_bin: str
    quantity: str
    unit: str
    actor: str


@dataclass(frozen=True)
class Picked:
    key: str
    lot_number: str
    to_bin: str
    quantity: str
    unit: str
    replayed: bool = False


@dataclass(frozen=True)
class IssueRequest:
    """Consume material of one lot into a batch. Applied exactly once per `key`."""

    key: str
    batch_id: str
    phase_instance: str
    line: int
    material_code: str
    lot_number: str
    quantity: str
    unit: str
    actor: str
    bin_code: str = ""  # '' = the lot's bins, staging and reserved bins first


@dataclass(frozen=True)
class Issued:
    key: str
    batch_id: str
    lot_number: str
    quantity: str  # in the request's unit
    unit: str
    replayed: bool = False  # True when this key had been applied before


@dataclass(frozen=True)
class ReturnRequest:
    """Unused material of an issued lot goes back to a bin; genealogy nets it out."""

    key: str
    batch_id: str
    phase_instance: str
    line: int
    lot_number: str
    quantity: str
    unit: str
    to_bin: str
    actor: str


@dataclass(frozen=True)
class Returned:
    key: str
    lot_number: str
    quantity: str
    unit: str
    replayed: bool = False


# --- output and genealogy --------------------------------------------------------------


@dataclass(frozen=True)
class OutputRequest:
    """The batch's produced lot; its inputs are what was issued to the batch, net of returns."""

    key: str
    batch_id: str
    material_code: str
    lot_number: str
    quantity: str
    unit: str
    to_bin: str
    actor: str
    expiry: str = ""  # ISO date


@dataclass(frozen=True)
class GenealogyLink:
    """`quantity` of `input_lot` went into `batch_id`, which produced `output_lot`."""

    input_lot: str
    input_material: str
    batch_id: str
    output_lot: str  # '' while the batch has not recorded its output
    quantity: str
    unit: str
    depth: int = 1


@dataclass(frozen=True)
class OutputRecorded:
    key: str
    lot_number: str
    inputs: list[GenealogyLink] = field(default_factory=list)
    replayed: bool = False


@dataclass(frozen=True)
class GenealogyQuery:
    """`ref` is a lot number, or for backward queries also a batch id."""

    ref: str
    max_depth: int = 10


@dataclass(frozen=True)
class Genealogy:
    ref: str
    direction: str  # forward | backward
    links: list[GenealogyLink] = field(default_factory=list)


# --- lot status ------------------------------------------------------------------------


@dataclass(frozen=True)
class LotStatusRequest:
    key: str
    lot_number: str
    status: str  # one of LOT_STATUSES
    reason: str
    actor: str


@dataclass(frozen=True)
class LotStatusChanged:
    key: str
    lot_number: str
    old_status: str
    status: str
    replayed: bool = False


@dataclass(frozen=True)
class LotQuery:
    lot_number: str


@dataclass(frozen=True)
class LotInfo:
    lot_number: str
    material_code: str
    status: str
    expiry: str
    retest: str
    potency: str
    on_hand: str
    unit: str
    produced_by_batch: str = ""


# --- warehouse operations of the built-in WMS (not needed by a batch) ------------------


@dataclass(frozen=True)
class ReceiptRequest:
    """Goods received into a bin. A new lot starts in quarantine unless stated otherwise."""

    key: str
    material_code: str
    lot_number: str
    quantity: str
    unit: str
    bin_code: str
    actor: str
    expiry: str = ""  # ISO date
    retest: str = ""  # ISO date
    potency: str = ""  # percent, Decimal text
    supplier_lot: str = ""
    sscc: str = ""
    status: str = QUARANTINE


@dataclass(frozen=True)
class MoveRequest:
    key: str
    lot_number: str
    from_bin: str
    to_bin: str
    quantity: str
    unit: str
    actor: str


@dataclass(frozen=True)
class AdjustRequest:
    """A counted correction: `delta` is signed (e.g. "-0.25")."""

    key: str
    lot_number: str
    bin_code: str
    delta: str
    unit: str
    reason: str
    actor: str


@dataclass(frozen=True)
class StockChanged:
    key: str
    lot_number: str
    replayed: bool = False
