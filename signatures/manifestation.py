"""How a signature is shown to people: printed name, local date and time with its UTC
offset, and meaning (21 CFR 11.50, Annex 11 §14).

Stored times stay UTC (what was signed and hashed); only the display is in the site's
time zone (`EBR_SITE_TIMEZONE`), always with its offset so the UTC instant can be read
back without knowing the zone's rules. Pages, the PDF and API responses all format
through here, so a signature reads the same wherever it appears.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

ALTERED = "ALTERED: the record no longer matches this signature"


@lru_cache(maxsize=16)
def _zone(tz: str) -> ZoneInfo:
    return ZoneInfo(tz)


def to_utc(dt: datetime | str) -> datetime:
    """An aware UTC datetime from a datetime or ISO 8601 text; naive means UTC (SQLite
    hands stored times back naive, and the store only ever writes UTC)."""
    value = datetime.fromisoformat(dt) if isinstance(dt, str) else dt
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_local(dt: datetime | str, tz: str) -> str:
    """e.g. "2026-11-22 10:15:03 CET (UTC+01:00)" for Europe/Berlin."""
    local = to_utc(dt).astimezone(_zone(tz))
    offset = local.strftime("%z")  # +0100
    name = local.tzname() or ""
    return f"{local:%Y-%m-%d %H:%M:%S} {name} (UTC{offset[:3]}:{offset[3:]})"


@dataclass(frozen=True)
class Manifestation:
    printed_name: str
    username: str
    meaning: str
    signed_at_utc: str
    signed_at_local: str
    altered: bool = False

    def text(self) -> str:
        line = (
            f"{self.printed_name} ({self.username}), {self.meaning}, {self.signed_at_local}"
        )
        return f"{line}. {ALTERED}" if self.altered else line

    def as_dict(self) -> dict[str, Any]:
        return {
            "printed_name": self.printed_name,
            "username": self.username,
            "meaning": self.meaning,
            "signed_at_utc": self.signed_at_utc,
            "signed_at_local": self.signed_at_local,
            "status": "altered" if self.altered else "verified",
            "text": self.text(),
        }


def manifestation(
    full_name: str, username: str, meaning: str, signed_at: datetime | str, tz: str,
    *, altered: bool = False,
) -> Manifestation:
    return Manifestation(
        printed_name=full_name,
        username=username,
        meaning=meaning,
        signed_at_utc=to_utc(signed_at).isoformat(timespec="milliseconds"),
        signed_at_local=format_local(signed_at, tz),
        altered=altered,
    )


def annotate(record: Any, tz: str) -> Any:
    """A copy of `record` (dicts and lists) where every signature — a mapping with
    `full_name`, `meaning` and `signed_at` — carries its `manifestation`. A signature
    whose enclosing entry says `signature_verified: false` is shown as altered."""
    return _walk(record, tz, verified=None)


def _walk(node: Any, tz: str, verified: bool | None) -> Any:
    if isinstance(node, Mapping):
        here = node.get("signature_verified", verified)
        out = {k: _walk(v, tz, here if k == "signature" else None) for k, v in node.items()}
        if {"full_name", "meaning", "signed_at"} <= node.keys() and node["signed_at"]:
            out["manifestation"] = manifestation(
                node["full_name"], node.get("username", ""), node["meaning"],
                node["signed_at"], tz, altered=verified is False,
            ).as_dict()
        return out
    if isinstance(node, list):
        return [_walk(v, tz, None) for v in node]
    return node
