"""Reading the audit trail: browse with filters, export, and verify the hash chain.

Read-only by design: no route edits or deletes an entry (the database refuses too).
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from sqlmodel import Session

from api.deps import ServicesDep, UserDep, outside_areas, require_any_role
from api.errors import ApiError
from store import audit
from store.db import transaction
from store.models import ALL_AREAS, User

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])

MAX_PAGE = 500
READERS = ("auditor",)
VERIFIERS = ("auditor", "qa", "admin")
CSV_COLUMNS = ("id", "at", "actor", "action", "subject", "detail", "key", "prev_hash", "hash")


def _scope(svc: ServicesDep, user: User, subject: str | None) -> None:
    """Areas apply to the trail too: a batch outside yours is 404, as everywhere; the
    whole trail (every area's batches) needs the all-areas grant."""
    if subject:
        batch_id = subject.split("/", 1)[0]
        if outside_areas(svc, user, batch_id):
            raise ApiError(404, "not_found", f"Batch {batch_id} does not exist.")
    elif ALL_AREAS not in user.area_list:
        raise ApiError(
            403, "not_permitted",
            "The whole trail spans every area: filter by a subject (e.g. one of your "
            "batches), or ask an administrator for the all-areas grant.",
        )


def _filter(
    subject: str | None, actor: str | None, action: str | None,
    since: datetime | None, until: datetime | None,
) -> audit.AuditFilter:
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise ApiError(
                422, "invalid_request",
                f"{name} needs a time zone offset, e.g. 2026-11-21T08:00:00+00:00.",
            )
    return audit.AuditFilter(subject=subject, actor=actor, action=action, since=since,
                             until=until)


Subject = Annotated[str | None, Query(max_length=200, description="batch id or subject")]
Actor = Annotated[str | None, Query(max_length=64)]
Action = Annotated[str | None, Query(max_length=64, description="exact, or prefix ending '.'")]
Since = Annotated[datetime | None, Query(description="from (inclusive), ISO 8601 with offset")]
Until = Annotated[datetime | None, Query(description="to (exclusive), ISO 8601 with offset")]


@router.get("")
def browse(
    user: UserDep,
    svc: ServicesDep,
    subject: Subject = None,
    actor: Actor = None,
    action: Action = None,
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    after_id: Annotated[int, Query(ge=0, description="last id of the previous page")] = 0,
) -> dict[str, Any]:
    require_any_role(user, *READERS)
    _scope(svc, user, subject)
    where = _filter(subject, actor, action, since, until)
    with Session(svc.engine) as session:
        rows = audit.search(session, where, limit, after_id)
    entries = [audit.as_dict(r) for r in rows]
    return {
        "entries": entries,
        "next_after_id": entries[-1]["id"] if len(entries) == limit else None,
    }


@router.get("/export")
def export(
    user: UserDep,
    svc: ServicesDep,
    format: Literal["csv", "json"] = "csv",
    subject: Subject = None,
    actor: Actor = None,
    action: Action = None,
    since: Since = None,
    until: Until = None,
) -> StreamingResponse:
    """Every matching entry, streamed, so an export of a large trail is not held in memory."""
    require_any_role(user, *READERS)
    _scope(svc, user, subject)
    where = _filter(subject, actor, action, since, until)
    # Who took a copy of the trail, and of what, is itself worth a line in the trail.
    with transaction(svc.engine) as session:
        audit.append(
            session,
            key=f"audit/export/{uuid.uuid4().hex}",
            actor=user.username,
            action="audit.exported",
            subject="audit",
            detail={"format": format, **{k: str(v) for k, v in vars(where).items() if v}},
        )
    body = _csv(svc, where) if format == "csv" else _json(svc, where)
    media = "text/csv; charset=utf-8" if format == "csv" else "application/json"
    headers = {"Content-Disposition": f'attachment; filename="ebr-audit.{format}"'}
    return StreamingResponse(body, media_type=media, headers=headers)


def _csv(svc: ServicesDep, where: audit.AuditFilter) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    with Session(svc.engine) as session:
        for event in audit.iter_all(session, where):
            row = audit.as_dict(event)
            row["detail"] = json.dumps(row["detail"], sort_keys=True)
            writer.writerow([_cell(row[c]) for c in CSV_COLUMNS])
            if buffer.tell() > 65536:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()


def _cell(value: object) -> str:
    # A cell starting with = + - @ runs as a formula in a spreadsheet: neutralise it.
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _json(svc: ServicesDep, where: audit.AuditFilter) -> Iterator[str]:
    yield '{"entries": ['
    first = True
    with Session(svc.engine) as session:
        for event in audit.iter_all(session, where):
            yield ("" if first else ",") + json.dumps(audit.as_dict(event), sort_keys=True)
            first = False
    yield "]}"


@router.get("/verify")
def verify(user: UserDep, svc: ServicesDep) -> dict[str, Any]:
    require_any_role(user, *VERIFIERS)
    with Session(svc.engine) as session:
        check = audit.verify_chain(session)
    return {
        "ok": check.ok,
        "entries_verified": check.entries,
        "first_bad_id": check.first_bad_id,
        "first_bad_key": check.first_bad_key,
        "problem": check.problem,
        "message": check.describe(),
    }
