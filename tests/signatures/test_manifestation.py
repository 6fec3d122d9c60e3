"""Signatures are shown in the site's time zone with the offset; stored times stay UTC."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from settings.config import Settings
from signatures.manifestation import annotate, format_local, manifestation


def test_winter_time_in_berlin_shows_cet_and_plus_one():
    at = datetime(2026, 11, 22, 9, 15, 3, tzinfo=UTC)
    assert format_local(at, "Europe/Berlin") == "2026-11-22 10:15:03 CET (UTC+01:00)"


def test_summer_time_shows_the_summer_offset():
    assert format_local("2026-07-01T09:15:03.120+00:00", "Europe/Berlin") == (
        "2026-07-01 11:15:03 CEST (UTC+02:00)"
    )


def test_zones_west_of_utc_and_half_hour_offsets():
    at = datetime(2026, 11, 22, 9, 15, 3, tzinfo=UTC)
    assert format_local(at, "America/New_York") == "2026-11-22 04:15:03 EST (UTC-05:00)"
    assert format_local(at, "Asia/Kolkata") == "2026-11-22 14:45:03 IST (UTC+05:30)"


def test_utc_site_and_naive_stored_times_read_as_utc():
    assert format_local(datetime(2026, 11, 22, 9, 15, 3), "UTC") == (
        "2026-11-22 09:15:03 UTC (UTC+00:00)"
    )


def test_manifestation_has_name_meaning_local_time_and_the_utc_instant():
    m = manifestation("Olivia Operator", "operator", "performed",
                      "2026-11-22T09:15:03.120+00:00", "Europe/Berlin")
    assert m.text() == "Olivia Operator (operator), performed, 2026-11-22 10:15:03 CET (UTC+01:00)"
    assert m.as_dict()["signed_at_utc"] == "2026-11-22T09:15:03.120+00:00"
    assert m.as_dict()["status"] == "verified"


def test_annotate_marks_every_signature_and_flags_the_altered_one():
    sig = {"full_name": "Olivia Operator", "username": "operator", "meaning": "performed",
           "signed_at": "2026-11-22T09:15:03.120+00:00"}
    record = {"steps": [{"signature": sig, "signature_verified": True},
                        {"signature": sig, "signature_verified": False,
                         "verification": sig | {"meaning": "verified"}}],
              "release": None}
    shown = annotate(record, "Europe/Berlin")
    first, second = shown["steps"]
    assert first["signature"]["manifestation"]["status"] == "verified"
    assert second["signature"]["manifestation"]["status"] == "altered"
    assert "ALTERED" in second["signature"]["manifestation"]["text"]
    assert "manifestation" in second["verification"]
    assert "manifestation" not in record["steps"][0]["signature"]  # the input is untouched


def test_unknown_site_time_zone_is_refused_at_start_up_naming_the_setting():
    with pytest.raises(ValidationError, match="EBR_SITE_TIMEZONE='Mars/Olympus' is not an IANA"):
        Settings(site_timezone="Mars/Olympus", _env_file=None)
    assert Settings(site_timezone="Europe/Berlin", _env_file=None).site_timezone == "Europe/Berlin"


def test_default_area_must_be_one_of_the_sites_areas():
    with pytest.raises(ValidationError, match="EBR_DEFAULT_AREA='line-c' is not one of"):
        Settings(areas=["line-a", "line-b"], default_area="line-c", _env_file=None)


def test_a_command_started_with_a_bad_zone_exits_with_the_reason_not_a_traceback(
    monkeypatch, tmp_path
):
    from cli.common import load_settings

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EBR_SITE_TIMEZONE", "Mars/Olympus")
    with pytest.raises(SystemExit, match="configuration is not valid: EBR_SITE_TIMEZONE="):
        load_settings()
    monkeypatch.setenv("EBR_SITE_TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("EBR_LOCKOUT_THRESHOLD", "0")
    with pytest.raises(SystemExit, match=r"EBR_LOCKOUT_THRESHOLD: .*greater than or equal to 1"):
        load_settings()
