"""ebr's own WMS on the record store's database: lots, bins, stock, FEFO, genealogy.

Every write runs in one transaction that also records its idempotency key
(`wms_requests`), its ledger movements and its audit entry; a repeated key returns the
first result and writes nothing. Lot status is read inside each write's transaction,
so a QMS hold takes effect on the very next pick or issue.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from biip.gtin import Gtin
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from recipes.units import compatible, convert, unit_problem
from store import audit
from store.db import transaction
from wms import messages as m
from wms.idempotent import write_once
from wms.models import Bin, Lot, Material, Movement, Reservation, Stock, WmsRequest
from wms.models import Genealogy as GenealogyRow
from wms.port import (
    BadQuantity,
    BadScan,
    IdempotencyConflict,
    InsufficientStock,
    LotExpired,
    LotNotReleased,
    LotOnHold,
    UnknownBin,
    UnknownLot,
    UnknownMaterial,
    WmsError,
    WrongLot,
    WrongMaterial,
)
from wms.scan import parse_label

R = TypeVar("R")
ZERO = Decimal(0)


def _today() -> date:
    return datetime.now(UTC).date()


def _iso(d: date | None) -> str:
    return d.isoformat() if d else ""


def _date(text: str, what: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise WmsError(f"{what} '{text}' is not a date; write it as YYYY-MM-DD.") from exc


def _text(q: Decimal) -> str:
    # Trailing zeros say nothing about precision here (pint conversions add them).
    return format(q.normalize(), "f")


class BuiltinWms:
    def __init__(self, engine: Engine, today: Callable[[], date] = _today) -> None:
        self.engine = engine
        # Injected so tests can move the calendar past an expiry date.
        self.today = today

    # --- idempotent write machinery ------------------------------------------------------

    def _write(
        self, operation: str, request: Any, result_type: type[R], apply: Callable[[Session], R]
    ) -> R:
        return write_once(self.engine, WmsRequest, operation, request, result_type, apply,
                          IdempotencyConflict)

    # --- lookups ---------------------------------------------------------------------------

    def _material(self, s: Session, code: str) -> Material:
        row = s.exec(select(Material).where(Material.code == code)).first()
        if row is None:
            raise UnknownMaterial(f"Material '{code}' is not in the WMS; add it first.")
        return row

    def _lot(self, s: Session, number: str, for_update: bool = False) -> Lot:
        query = select(Lot).where(Lot.lot_number == number)
        if for_update:
            query = query.with_for_update()
        row = s.exec(query).first()
        if row is None:
            raise UnknownLot(f"Lot '{number}' is not in the WMS: check the label, or receive "
                             "the lot first.")
        return row

    def _bin(self, s: Session, code: str) -> Bin:
        row = s.exec(select(Bin).where(Bin.code == code)).first()
        if row is None:
            raise UnknownBin(f"Bin '{code}' does not exist; check the bin label.")
        return row

    def _stock(self, s: Session, lot: str, bin_code: str) -> Stock:
        row = s.exec(
            select(Stock).where(Stock.lot_number == lot, Stock.bin_code == bin_code)
            .with_for_update()
        ).first()
        if row is None:
            row = Stock(lot_number=lot, bin_code=bin_code, quantity=ZERO)
            s.add(row)
        return row

    def _qty(self, value: str, unit: str, material: Material, signed: bool = False) -> Decimal:
        """`value unit` in the material's unit, exactly (pint with Decimal)."""
        try:
            q = Decimal(value)
        except (InvalidOperation, TypeError) as exc:
            raise BadQuantity(f"'{value}' is not a number; write e.g. 1.25.") from exc
        if not q.is_finite() or (q == 0 if signed else q <= 0):
            kind = "non-zero" if signed else "positive"
            raise BadQuantity(f"Quantity {value} {unit} must be a {kind} number.")
        if q.adjusted() > 12 or q.as_tuple().exponent < -12:  # type: ignore[operator]
            # 1E+999999999 is a valid Decimal whose digits would fill the memory.
            raise BadQuantity(f"Quantity {value} {unit} is out of range: at most 12 digits "
                              "before and 12 after the decimal point.")
        problem = unit_problem(unit)
        if problem:
            raise BadQuantity(problem)
        if not compatible(unit, material.unit):
            raise BadQuantity(f"{material.code} is kept in {material.unit}; {unit} does not "
                              f"convert to {material.unit}.")
        return convert(q, unit, material.unit)

    def _check_usable(self, lot: Lot) -> None:
        today = self.today()
        if lot.status == m.ON_HOLD:
            raise LotOnHold(f"Lot {lot.lot_number} is on hold ({lot.status_reason or 'QA hold'}): "
                            "do not use it. Take another lot, or ask QA to release it.")
        if lot.status == m.QUARANTINE:
            raise LotNotReleased(f"Lot {lot.lot_number} is in quarantine: QA has not released "
                                 "it. Take a released lot.")
        if lot.status == m.REJECTED:
            raise LotNotReleased(f"Lot {lot.lot_number} is rejected: do not use it. Take a "
                                 "released lot and tell the supervisor where you found it.")
        if lot.status == m.EXPIRED or (lot.expiry is not None and lot.expiry < today):
            when = _iso(lot.expiry) or "a past date"
            raise LotExpired(f"Lot {lot.lot_number} expired on {when}: do not use it. Set "
                             "the container aside for disposal and take another lot.")
        if lot.retest is not None and lot.retest < today:
            raise LotNotReleased(f"Lot {lot.lot_number} was due for retest on {_iso(lot.retest)}: "
                                 "it may not be used until QA extends or retests it.")

    def _reserved(self, s: Session, lot: str, bin_code: str, exclude: tuple[str, str, int] | None
                  ) -> Decimal:
        total = ZERO
        for r in s.exec(select(Reservation).where(Reservation.lot_number == lot,
                                                  Reservation.bin_code == bin_code)):
            if exclude and (r.batch_id, r.phase_instance, r.line) == exclude:
                continue
            total += r.quantity
        return total

    def _move(self, s: Session, **fields: Any) -> None:
        s.add(Movement(**fields))

    def _audit(self, s: Session, request: Any, action: str, subject: str,
               detail: dict[str, str]) -> None:
        audit.append(s, key=f"wms:{request.key}", actor=request.actor, action=action,
                     subject=subject, detail=detail)

    # --- master data (not on the port) --------------------------------------------------------

    def create_material(self, code: str, name: str, unit: str, gtin: str, actor: str) -> Material:
        problem = unit_problem(unit)
        if problem:
            raise BadQuantity(problem)
        if gtin:
            parsed = Gtin.parse(gtin)  # raises on a wrong check digit
            gtin = parsed.value.zfill(14)
        with transaction(self.engine) as s:
            row = s.exec(select(Material).where(Material.code == code)).first()
            if row is not None:
                return row
            row = Material(code=code, name=name, unit=unit, gtin=gtin or None)
            s.add(row)
            audit.append(s, key=f"wms:material:{code}", actor=actor, action="wms.material_created",
                         subject=code, detail={"name": name, "unit": unit, "gtin": gtin})
            return row

    def create_bin(self, code: str, location: str, actor: str, staging: bool = False) -> Bin:
        with transaction(self.engine) as s:
            row = s.exec(select(Bin).where(Bin.code == code)).first()
            if row is not None:
                return row
            row = Bin(code=code, location=location, staging=staging)
            s.add(row)
            audit.append(s, key=f"wms:bin:{code}", actor=actor, action="wms.bin_created",
                         subject=code, detail={"location": location, "staging": str(staging)})
            return row

    def materials(self) -> list[Material]:
        with Session(self.engine) as s:
            return list(s.exec(select(Material).order_by(Material.code)))

    def bins(self) -> list[Bin]:
        with Session(self.engine) as s:
            return list(s.exec(select(Bin).order_by(Bin.code)))

    def lots(self, material_code: str = "") -> list[m.LotInfo]:
        with Session(self.engine) as s:
            query = select(Lot).order_by(Lot.material_code, Lot.lot_number)
            if material_code:
                query = query.where(Lot.material_code == material_code)
            return [self._info(s, lot) for lot in s.exec(query)]

    def stock(self, lot_number: str = "", material_code: str = "") -> list[dict[str, str]]:
        with Session(self.engine) as s:
            query = select(Stock, Lot).where(Stock.lot_number == Lot.lot_number,
                                             Stock.quantity != ZERO)
            if lot_number:
                query = query.where(Stock.lot_number == lot_number)
            if material_code:
                query = query.where(Lot.material_code == material_code)
            units = {mat.code: mat.unit for mat in s.exec(select(Material))}
            return [
                {"lot_number": st.lot_number, "material_code": lot.material_code,
                 "bin_code": st.bin_code, "quantity": _text(st.quantity),
                 "unit": units.get(lot.material_code, ""), "status": lot.status}
                for st, lot in s.exec(query.order_by(Stock.lot_number, Stock.bin_code))
            ]

    # --- receipts, moves, adjustments ---------------------------------------------------

    def receive(self, request: m.ReceiptRequest) -> m.StockChanged:
        def apply(s: Session) -> m.StockChanged:
            material = self._material(s, request.material_code)
            self._bin(s, request.bin_code)
            q = self._qty(request.quantity, request.unit, material)
            if request.status not in m.LOT_STATUSES:
                raise WmsError(f"Status '{request.status}' is not one of "
                               f"{', '.join(m.LOT_STATUSES)}.")
            lot = s.exec(select(Lot).where(Lot.lot_number == request.lot_number)).first()
            if lot is None:
                potency = None
                if request.potency:
                    try:
                        potency = Decimal(request.potency)
                    except InvalidOperation as exc:
                        raise BadQuantity(f"Potency '{request.potency}' is not a number.") from exc
                lot = Lot(lot_number=request.lot_number, material_code=material.code,
                          status=request.status, expiry=_date(request.expiry, "Expiry"),
                          retest=_date(request.retest, "Retest date"), potency=potency,
                          supplier_lot=request.supplier_lot)
                s.add(lot)
            elif lot.material_code != material.code:
                raise WrongMaterial(f"Lot {lot.lot_number} is {lot.material_code}, not "
                                    f"{material.code}: check the delivery paperwork.")
            stock = self._stock(s, lot.lot_number, request.bin_code)
            stock.quantity += q
            s.add(stock)
            self._move(s, key=f"{request.key}#0", kind="receipt", lot_number=lot.lot_number,
                       material_code=material.code, to_bin=request.bin_code, quantity=q,
                       unit=material.unit, sscc=request.sscc, actor=request.actor)
            self._audit(s, request, "wms.receipt", lot.lot_number,
                        {"material": material.code, "quantity": _text(q), "unit": material.unit,
                         "bin": request.bin_code, "sscc": request.sscc})
            return m.StockChanged(key=request.key, lot_number=lot.lot_number)

        return self._write("receipt", request, m.StockChanged, apply)

    def move(self, request: m.MoveRequest) -> m.StockChanged:
        def apply(s: Session) -> m.StockChanged:
            lot = self._lot(s, request.lot_number)
            material = self._material(s, lot.material_code)
            self._bin(s, request.to_bin)
            q = self._qty(request.quantity, request.unit, material)
            self._take(s, lot, request.from_bin, q, None)
            dest = self._stock(s, lot.lot_number, request.to_bin)
            dest.quantity += q
            s.add(dest)
            self._move(s, key=f"{request.key}#0", kind="move", lot_number=lot.lot_number,
                       material_code=material.code, from_bin=request.from_bin,
                       to_bin=request.to_bin, quantity=q, unit=material.unit, actor=request.actor)
            self._audit(s, request, "wms.move", lot.lot_number,
                        {"from": request.from_bin, "to": request.to_bin, "quantity": _text(q),
                         "unit": material.unit})
            return m.StockChanged(key=request.key, lot_number=lot.lot_number)

        return self._write("move", request, m.StockChanged, apply)

    def adjust(self, request: m.AdjustRequest) -> m.StockChanged:
        def apply(s: Session) -> m.StockChanged:
            if not request.reason.strip():
                raise WmsError("An adjustment needs a reason (e.g. the cycle count reference).")
            lot = self._lot(s, request.lot_number)
            material = self._material(s, lot.material_code)
            self._bin(s, request.bin_code)
            delta = self._qty(request.delta, request.unit, material, signed=True)
            stock = self._stock(s, lot.lot_number, request.bin_code)
            if stock.quantity + delta < 0:
                raise InsufficientStock(
                    f"Bin {request.bin_code} holds {_text(stock.quantity)} {material.unit} of "
                    f"lot {lot.lot_number}; it cannot go below zero.")
            stock.quantity += delta
            s.add(stock)
            self._move(s, key=f"{request.key}#0", kind="adjust", lot_number=lot.lot_number,
                       material_code=material.code, to_bin=request.bin_code, quantity=delta,
                       unit=material.unit, reason=request.reason, actor=request.actor)
            self._audit(s, request, "wms.adjust", lot.lot_number,
                        {"bin": request.bin_code, "delta": _text(delta), "unit": material.unit,
                         "reason": request.reason})
            return m.StockChanged(key=request.key, lot_number=lot.lot_number)

        return self._write("adjust", request, m.StockChanged, apply)

    def _take(self, s: Session, lot: Lot, bin_code: str, q: Decimal,
              line: tuple[str, str, int] | None) -> None:
        """Remove `q` from one bin, never touching what other lines have reserved."""
        stock = self._stock(s, lot.lot_number, bin_code)
        free = stock.quantity - self._reserved(s, lot.lot_number, bin_code, line)
        if free < q:
            raise InsufficientStock(
                f"Bin {bin_code} has {_text(max(free, ZERO))} of lot {lot.lot_number} free "
                f"(on hand {_text(stock.quantity)}, the rest reserved); {_text(q)} needed.")
        stock.quantity -= q
        s.add(stock)

    # --- the port ---------------------------------------------------------------------------

    def verify_scan(self, request: m.ScanRequest) -> m.ScanResult:
        label = parse_label(request.raw)
        with Session(self.engine) as s:
            material = self._material(s, request.material_code)
            lot_number = label.lot
            if not lot_number:  # an SSCC-only pallet label: the receipt tells the lot
                receipt = s.exec(select(Movement).where(Movement.sscc == label.sscc,
                                                        Movement.kind == "receipt")).first()
                if receipt is None:
                    raise UnknownLot(f"No container with SSCC {label.sscc} was received; scan "
                                     "the material label instead.")
                lot_number = receipt.lot_number
            if label.gtin:
                if not material.gtin:
                    raise BadScan(f"{material.code} has no GTIN in the WMS, so its label cannot "
                                  "be verified: ask the warehouse to add it.")
                if label.gtin != material.gtin:
                    other = s.exec(select(Material).where(Material.gtin == label.gtin)).first()
                    what = f"{other.code} {other.name}" if other else f"GTIN {label.gtin}"
                    raise WrongMaterial(f"This label is {what}, but this step needs "
                                        f"{material.code} {material.name}. Put the container "
                                        f"back and scan {material.name}.")
            lot = self._lot(s, lot_number)
            if lot.material_code != material.code:
                raise WrongMaterial(f"Lot {lot.lot_number} is {lot.material_code}, but this step "
                                    f"needs {material.code} {material.name}.")
            if request.expected_lot and lot.lot_number != request.expected_lot:
                raise WrongLot(f"This is lot {lot.lot_number}; lot {request.expected_lot} was "
                               f"picked for this step. Scan the container of lot "
                               f"{request.expected_lot}.")
            if label.expiry and lot.expiry and label.expiry != lot.expiry.isoformat():
                raise BadScan(f"The label says lot {lot.lot_number} expires {label.expiry}, the "
                              f"WMS says {lot.expiry.isoformat()}: set the container aside and "
                              "call QA to check the label.")
            self._check_usable(lot)
            return m.ScanResult(material_code=material.code, lot_number=lot.lot_number,
                                gtin=material.gtin or "", expiry=_iso(lot.expiry),
                                sscc=label.sscc, lot_status=lot.status)

    def allocate(
        self, s: Session, material: Material, q: Decimal
    ) -> list[tuple[Lot, str, Decimal]]:
        """FEFO: earliest expiry first (lots without expiry last), then oldest receipt."""
        lots = []
        for lot in s.exec(select(Lot).where(Lot.material_code == material.code)):
            try:
                self._check_usable(lot)
            except WmsError:
                continue
            lots.append(lot)
        lots.sort(key=lambda lot: (lot.expiry is None, lot.expiry or date.max, lot.created_at,
                                   lot.lot_number))
        staging = {b.code for b in s.exec(select(Bin).where(col(Bin.staging).is_(True)))}
        plan: list[tuple[Lot, str, Decimal]] = []
        remaining = q
        for lot in lots:
            rows = s.exec(select(Stock).where(Stock.lot_number == lot.lot_number)
                          .order_by(Stock.bin_code)).all()
            for st in rows:
                if remaining <= 0 or st.bin_code in staging:
                    continue
                free = st.quantity - self._reserved(s, lot.lot_number, st.bin_code, None)
                if free <= 0:
                    continue
                take = min(free, remaining)
                plan.append((lot, st.bin_code, take))
                remaining -= take
        if remaining > 0:
            available = q - remaining
            raise InsufficientStock(
                f"Only {_text(available)} {material.unit} of {material.code} is released, "
                f"unexpired and unreserved; {_text(q)} {material.unit} needed. Receive or "
                "release stock, or ask QA about lots on hold.")
        return plan

    def reserve(self, request: m.ReserveRequest) -> m.Reservation:
        def apply(s: Session) -> m.Reservation:
            material = self._material(s, request.material_code)
            q = self._qty(request.quantity, request.unit, material)
            picks = []
            for lot, bin_code, take in self.allocate(s, material, q):
                s.add(Reservation(key=request.key, batch_id=request.batch_id,
                                  phase_instance=request.phase_instance, line=request.line,
                                  lot_number=lot.lot_number, bin_code=bin_code, quantity=take))
                picks.append(m.PickLine(lot_number=lot.lot_number, bin_code=bin_code,
                                        quantity=_text(convert(take, material.unit, request.unit)),
                                        unit=request.unit, expiry=_iso(lot.expiry)))
            self._audit(s, request, "wms.reserve", request.batch_id,
                        {"material": material.code, "quantity": request.quantity,
                         "unit": request.unit, "phase": request.phase_instance,
                         "lots": ",".join(p.lot_number for p in picks)})
            return m.Reservation(key=request.key, material_code=material.code, picks=picks)

        return self._write("reserve", request, m.Reservation, apply)

    def _use_reservations(self, s: Session, request: Any, lot: str, q: Decimal,
                          bin_code: str | None = None) -> None:
        remaining = q
        query = select(Reservation).where(
            Reservation.batch_id == request.batch_id,
            Reservation.phase_instance == request.phase_instance,
            Reservation.line == request.line, Reservation.lot_number == lot)
        if bin_code is not None:
            query = query.where(Reservation.bin_code == bin_code)
        for r in s.exec(query.order_by(Reservation.id)):
            if remaining <= 0:
                break
            used = min(r.quantity, remaining)
            r.quantity -= used
            remaining -= used
            if r.quantity == 0:
                s.delete(r)
            else:
                s.add(r)

    def pick(self, request: m.PickRequest) -> m.Picked:
        def apply(s: Session) -> m.Picked:
            lot = self._lot(s, request.lot_number, for_update=True)
            self._check_usable(lot)
            material = self._material(s, lot.material_code)
            self._bin(s, request.to_bin)
            q = self._qty(request.quantity, request.unit, material)
            line = (request.batch_id, request.phase_instance, request.line)
            self._take(s, lot, request.from_bin, q, line)
            self._use_reservations(s, request, lot.lot_number, q, request.from_bin)
            dest = self._stock(s, lot.lot_number, request.to_bin)
            dest.quantity += q
            s.add(dest)
            self._move(s, key=f"{request.key}#0", kind="pick", lot_number=lot.lot_number,
                       material_code=material.code, from_bin=request.from_bin,
                       to_bin=request.to_bin, quantity=q, unit=material.unit,
                       batch_id=request.batch_id, phase_instance=request.phase_instance,
                       line=request.line, actor=request.actor)
            self._audit(s, request, "wms.pick", request.batch_id,
                        {"lot": lot.lot_number, "from": request.from_bin, "to": request.to_bin,
                         "quantity": _text(q), "unit": material.unit})
            return m.Picked(key=request.key, lot_number=lot.lot_number, to_bin=request.to_bin,
                            quantity=request.quantity, unit=request.unit)

        return self._write("pick", request, m.Picked, apply)

    def issue(self, request: m.IssueRequest) -> m.Issued:
        def apply(s: Session) -> m.Issued:
            material = self._material(s, request.material_code)
            lot = self._lot(s, request.lot_number, for_update=True)
            if lot.material_code != material.code:
                raise WrongMaterial(f"Lot {lot.lot_number} is {lot.material_code}; this line "
                                    f"needs {material.code} {material.name}.")
            self._check_usable(lot)
            q = self._qty(request.quantity, request.unit, material)
            line = (request.batch_id, request.phase_instance, request.line)
            if request.bin_code:
                self._bin(s, request.bin_code)
                sources = [request.bin_code]
            else:
                sources = self._issue_sources(s, lot.lot_number, line)
            remaining, n = q, 0
            for bin_code in sources:
                if remaining <= 0:
                    break
                stock = self._stock(s, lot.lot_number, bin_code)
                free = stock.quantity - self._reserved(s, lot.lot_number, bin_code, line)
                take = min(free, remaining)
                if take <= 0:
                    continue
                self._take(s, lot, bin_code, take, line)
                self._use_reservations(s, request, lot.lot_number, take, bin_code)
                self._move(s, key=f"{request.key}#{n}", kind="issue", lot_number=lot.lot_number,
                           material_code=material.code, from_bin=bin_code, quantity=take,
                           unit=material.unit, batch_id=request.batch_id,
                           phase_instance=request.phase_instance, line=request.line,
                           actor=request.actor)
                remaining -= take
                n += 1
            if remaining > 0:
                where = f"bin {request.bin_code}" if request.bin_code else "its bins"
                raise InsufficientStock(
                    f"Lot {lot.lot_number} has only {_text(q - remaining)} {material.unit} free "
                    f"in {where}; {_text(q)} {material.unit} needed. Issue the rest from "
                    "another lot (a partial pick).")
            self._audit(s, request, "wms.issue", request.batch_id,
                        {"lot": lot.lot_number, "material": material.code,
                         "quantity": _text(q), "unit": material.unit,
                         "phase": request.phase_instance, "line": str(request.line)})
            return m.Issued(key=request.key, batch_id=request.batch_id,
                            lot_number=lot.lot_number, quantity=request.quantity,
                            unit=request.unit)

        return self._write("issue", request, m.Issued, apply)

    def _issue_sources(self, s: Session, lot: str, line: tuple[str, str, int]) -> list[str]:
        """Staging bins first (picked for this batch), then this line's reserved bins, then
        the rest by code."""
        staging = {b.code for b in s.exec(select(Bin).where(col(Bin.staging).is_(True)))}
        reserved = {r.bin_code for r in s.exec(select(Reservation).where(
            Reservation.lot_number == lot, Reservation.batch_id == line[0],
            Reservation.phase_instance == line[1], Reservation.line == line[2]))}
        bins = [st.bin_code for st in s.exec(select(Stock).where(Stock.lot_number == lot))]
        return sorted(bins, key=lambda b: (b not in staging, b not in reserved, b))

    def _consumption(self, s: Session, batch_id: str) -> dict[str, Decimal]:
        """Net quantity of each lot issued to a batch (issues minus returns)."""
        net: dict[str, Decimal] = defaultdict(Decimal)
        for mv in s.exec(select(Movement).where(Movement.batch_id == batch_id,
                                                col(Movement.kind).in_(("issue", "return")))):
            net[mv.lot_number] += mv.quantity if mv.kind == "issue" else -mv.quantity
        return {lot: q for lot, q in net.items() if q != 0}

    def return_material(self, request: m.ReturnRequest) -> m.Returned:
        def apply(s: Session) -> m.Returned:
            lot = self._lot(s, request.lot_number, for_update=True)
            material = self._material(s, lot.material_code)
            self._bin(s, request.to_bin)
            q = self._qty(request.quantity, request.unit, material)
            issued = self._consumption(s, request.batch_id).get(lot.lot_number, ZERO)
            if q > issued:
                raise BadQuantity(f"Only {_text(issued)} {material.unit} of lot {lot.lot_number} "
                                  f"is issued to batch {request.batch_id}; {_text(q)} cannot be "
                                  "returned.")
            dest = self._stock(s, lot.lot_number, request.to_bin)
            dest.quantity += q
            s.add(dest)
            self._move(s, key=f"{request.key}#0", kind="return", lot_number=lot.lot_number,
                       material_code=material.code, to_bin=request.to_bin, quantity=q,
                       unit=material.unit, batch_id=request.batch_id,
                       phase_instance=request.phase_instance, line=request.line,
                       actor=request.actor)
            self._audit(s, request, "wms.return", request.batch_id,
                        {"lot": lot.lot_number, "quantity": _text(q), "unit": material.unit,
                         "to": request.to_bin})
            return m.Returned(key=request.key, lot_number=lot.lot_number,
                              quantity=request.quantity, unit=request.unit)

        return self._write("return", request, m.Returned, apply)

    def record_output(self, request: m.OutputRequest) -> m.OutputRecorded:
        def apply(s: Session) -> m.OutputRecorded:
            material = self._material(s, request.material_code)
            self._bin(s, request.to_bin)
            q = self._qty(request.quantity, request.unit, material)
            if s.exec(select(Lot).where(Lot.lot_number == request.lot_number)).first():
                raise WmsError(f"Lot {request.lot_number} already exists; give the batch's "
                               "output a new lot number.")
            # Produced material waits in quarantine for QA release, like a receipt.
            s.add(Lot(lot_number=request.lot_number, material_code=material.code,
                      status=m.QUARANTINE, expiry=_date(request.expiry, "Expiry"),
                      produced_by_batch=request.batch_id))
            stock = self._stock(s, request.lot_number, request.to_bin)
            stock.quantity += q
            s.add(stock)
            self._move(s, key=f"{request.key}#0", kind="produce", lot_number=request.lot_number,
                       material_code=material.code, to_bin=request.to_bin, quantity=q,
                       unit=material.unit, batch_id=request.batch_id, actor=request.actor)
            links = []
            for input_lot, used in sorted(self._consumption(s, request.batch_id).items()):
                row = self._lot(s, input_lot)
                unit = self._material(s, row.material_code).unit
                s.add(GenealogyRow(batch_id=request.batch_id, output_lot=request.lot_number,
                                   input_lot=input_lot, input_material=row.material_code,
                                   quantity=used, unit=unit))
                links.append(m.GenealogyLink(input_lot=input_lot,
                                             input_material=row.material_code,
                                             batch_id=request.batch_id,
                                             output_lot=request.lot_number,
                                             quantity=_text(used), unit=unit))
            self._audit(s, request, "wms.output", request.batch_id,
                        {"lot": request.lot_number, "material": material.code,
                         "quantity": _text(q), "unit": material.unit,
                         "inputs": ",".join(f"{x.input_lot}={x.quantity}{x.unit}"
                                            for x in links)})
            return m.OutputRecorded(key=request.key, lot_number=request.lot_number, inputs=links)

        return self._write("output", request, m.OutputRecorded, apply)

    def set_lot_status(self, request: m.LotStatusRequest) -> m.LotStatusChanged:
        def apply(s: Session) -> m.LotStatusChanged:
            if request.status not in m.LOT_STATUSES:
                raise WmsError(f"Status '{request.status}' is not one of "
                               f"{', '.join(m.LOT_STATUSES)}.")
            if not request.reason.strip():
                raise WmsError("A lot status change needs a reason.")
            lot = self._lot(s, request.lot_number, for_update=True)
            old = lot.status
            lot.status, lot.status_reason = request.status, request.reason
            s.add(lot)
            self._audit(s, request, "wms.lot_status", lot.lot_number,
                        {"old": old, "new": request.status, "reason": request.reason})
            return m.LotStatusChanged(key=request.key, lot_number=lot.lot_number,
                                      old_status=old, status=request.status)

        return self._write("lot_status", request, m.LotStatusChanged, apply)

    def _info(self, s: Session, lot: Lot) -> m.LotInfo:
        unit = self._material(s, lot.material_code).unit
        on_hand = sum((st.quantity for st in s.exec(
            select(Stock).where(Stock.lot_number == lot.lot_number))), ZERO)
        status = lot.status
        if status == m.RELEASED and lot.expiry is not None and lot.expiry < self.today():
            status = m.EXPIRED  # shown as it is treated; the row keeps QA's last decision
        return m.LotInfo(lot_number=lot.lot_number, material_code=lot.material_code,
                         status=status, expiry=_iso(lot.expiry), retest=_iso(lot.retest),
                         potency=_text(lot.potency) if lot.potency is not None else "",
                         on_hand=_text(on_hand), unit=unit,
                         produced_by_batch=lot.produced_by_batch)

    def lot(self, query: m.LotQuery) -> m.LotInfo:
        with Session(self.engine) as s:
            return self._info(s, self._lot(s, query.lot_number))

    # --- genealogy -------------------------------------------------------------------------

    def _links(self, s: Session, batch_id: str, depth: int) -> list[m.GenealogyLink]:
        outputs = [lot.lot_number for lot in s.exec(
            select(Lot).where(Lot.produced_by_batch == batch_id).order_by(Lot.lot_number))]
        links = []
        for input_lot, used in sorted(self._consumption(s, batch_id).items()):
            row = self._lot(s, input_lot)
            unit = self._material(s, row.material_code).unit
            for out in outputs or [""]:
                links.append(m.GenealogyLink(input_lot=input_lot,
                                             input_material=row.material_code,
                                             batch_id=batch_id, output_lot=out,
                                             quantity=_text(used), unit=unit, depth=depth))
        return links

    def forward(self, query: m.GenealogyQuery) -> m.Genealogy:
        """Where did lot X go: the batches it was issued to, their output lots, and on."""
        with Session(self.engine) as s:
            self._lot(s, query.ref)
            links: list[m.GenealogyLink] = []
            frontier, seen = [query.ref], {query.ref}
            for depth in range(1, query.max_depth + 1):
                batches = sorted({mv.batch_id for mv in s.exec(select(Movement).where(
                    col(Movement.lot_number).in_(frontier), Movement.kind == "issue"))})
                found = [x for b in batches for x in self._links(s, b, depth)
                         if x.input_lot in frontier]
                links += found
                frontier = [x.output_lot for x in found if x.output_lot and
                            x.output_lot not in seen]
                seen.update(frontier)
                if not frontier:
                    break
            return m.Genealogy(ref=query.ref, direction="forward", links=links)

    def backward(self, query: m.GenealogyQuery) -> m.Genealogy:
        """What went into batch Y (or into the batch that produced lot Y), and into those."""
        with Session(self.engine) as s:
            lot = s.exec(select(Lot).where(Lot.lot_number == query.ref)).first()
            if lot is not None:
                batches = [lot.produced_by_batch] if lot.produced_by_batch else []
            else:
                known = s.exec(select(Movement).where(Movement.batch_id == query.ref)).first()
                if known is None:
                    raise UnknownLot(f"'{query.ref}' is neither a lot nor a batch the WMS has "
                                     "issued material to.")
                batches = [query.ref]
            links: list[m.GenealogyLink] = []
            seen = set(batches)
            for depth in range(1, query.max_depth + 1):
                found = [x for b in batches for x in self._links(s, b, depth)]
                if lot is not None and depth == 1:
                    found = [x for x in found if x.output_lot == lot.lot_number]
                links += found
                batches = []
                for x in found:
                    producer = self._lot(s, x.input_lot).produced_by_batch
                    if producer and producer not in seen:
                        seen.add(producer)
                        batches.append(producer)
                if not batches:
                    break
            return m.Genealogy(ref=query.ref, direction="backward", links=links)
