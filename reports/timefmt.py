"""How the eBMR prints a moment: the site's local time, its zone and the UTC offset.

"2026-11-22 10:15:03 CET (UTC+01:00)": a reader on the site sees wall-clock time, an
auditor elsewhere can still convert it exactly. The format is the one the pages and the
Part 11 manifestation use (`signatures/manifestation.py`), so a signature reads the same
on screen and on paper.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from signatures import manifestation


class UnknownTimeZone(ValueError):
    """The record names a time zone this machine's tz database does not know."""


@cache
def zone(name: str) -> dt.tzinfo:
    if name in ("", "UTC"):
        return dt.UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UnknownTimeZone(
            f"time zone {name!r} is not an IANA zone name this machine knows "
            "(e.g. Europe/Zurich, America/New_York, UTC)"
        ) from exc


def parse(value: object) -> dt.datetime | None:
    """An ISO 8601 timestamp with a UTC offset, or None (missing offset, garbled, absent)."""
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def format_local(moment: dt.datetime, tz: str) -> str:
    """`moment` in zone `tz`: date, time, zone abbreviation and the offset from UTC.

    The Part 11 manifestation's own formatter, so paper and screen agree to the character;
    the zone is checked here first so that an unknown name gives the renderer's message.
    """
    zone(tz)
    return manifestation.format_local(moment, tz or "UTC")
