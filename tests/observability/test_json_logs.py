"""JSON log lines: parseable, UTC, carrying the request id and the fields passed with them."""

from __future__ import annotations

import json
import logging

from observability.logs import JsonFormatter, request_id


def _format(record: logging.LogRecord) -> dict[str, object]:
    return json.loads(JsonFormatter().format(record))


def _record(msg: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("ebr.test", logging.WARNING, __file__, 1, msg, None, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_a_line_is_one_json_object_with_utc_time_level_and_message():
    entry = _format(_record("scale SCALE-01 answered ES"))
    assert entry["message"] == "scale SCALE-01 answered ES"
    assert entry["level"] == "warning"
    assert str(entry["ts"]).endswith("+00:00")
    assert "request_id" not in entry


def test_the_request_id_of_the_current_request_is_attached():
    token = request_id.set("req-123")
    try:
        entry = _format(_record("refused"))
    finally:
        request_id.reset(token)
    assert entry["request_id"] == "req-123"


def test_extra_fields_are_kept_and_non_scalars_become_text():
    entry = _format(_record("done", status=409, duration_ms=12.5, batch={"id": "B-1"}))
    assert entry["status"] == 409
    assert entry["duration_ms"] == 12.5
    assert entry["batch"] == "{'id': 'B-1'}"


def test_an_exception_is_one_field_not_extra_lines():
    try:
        raise ValueError("bad frame")
    except ValueError:
        import sys

        record = logging.LogRecord("ebr", logging.ERROR, __file__, 1, "boom", None, sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert "ValueError: bad frame" in json.loads(line)["exception"]
