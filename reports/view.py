"""The executed batch record (ebr.batch-record/1) turned into what the template prints.

Pure data in, plain data out: no WeasyPrint here, so the view is cheap to test. Every
phase is printed generically from its recorded values and its planned details, so a phase
kind added later still shows what was planned, what was recorded and how it was judged;
kinds with a known meaning get their own wording on top of that.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from reports.timefmt import parse as parse_time

# Audit actions a reviewer must see on page 2, and how the summary names them.
_EVENT_KINDS = {
    "comment.added": "COMMENT",
    "batch.held": "HOLD",
    "batch.running": "RESTART",
    "batch.aborted": "ABORT",
    "batch.rejected": "REJECTED",
    "report.signature_pending": "LATE SIGNATURE",
}
# Order of the summary: what undermines the record first, then what happened to product.
EXCEPTION_ORDER = (
    "ALTERED",
    "FAILED",
    "DEVIATION",
    "ALERT",
    "CORRECTION",
    "ABORT",
    "REJECTED",
    "HOLD",
    "DEVICE FAULT",
    "RESTART",
    "LATE SIGNATURE",
    "COMMENT",
)

# How each kind of phase is named in the record.
KIND_NAMES = {
    "weigh": "Weighing",
    "mix": "Mixing (PLC)",
    "check": "Data entry / in-process check",
    "instruction": "Instruction",
    "timer": "Hold time",
    "plc_set": "PLC setpoint",
    "plc_read": "PLC reading",
    "pick": "Material pick",
    "calc": "Calculation",
    "label": "Label",
    "signoff": "Sign-off",
}

# Planned fields, in print order, with their label. Unknown fields follow, generically.
_PLAN_LABELS = (
    ("material", "Material"),
    ("target_from", "Target from"),
    ("limits", "Action limits"),
    ("alert_limits", "Alert limits"),
    ("value_label", "Value asked for"),
    ("value_type", "Value type"),
    ("setpoint", "Setpoint"),
    ("tag", "PLC tag"),
    ("speed_rpm", "Speed setpoint"),
    ("duration_s", "Duration"),
    ("min_duration_s", "Minimum hold time"),
    ("max_duration_s", "Maximum hold time"),
    ("expression", "Expression"),
    ("decimals", "Decimals"),
    ("label_template", "Label template"),
    ("equipment_role", "Equipment role"),
    ("perform_role", "Performed by role"),
    ("sign_meaning", "Signature meaning"),
    ("verify_role", "Second-person verification"),
    ("on_fail", "On failure"),
)
# Planned fields that say nothing beyond their default.
_PLAN_DEFAULTS = {"perform_role": "operator", "sign_meaning": "performed", "value_type": "decimal",
                  "on_fail": "warn"}
_DURATIONS = ("duration_s", "min_duration_s", "max_duration_s")
_ON_FAIL = {"warn": "warn and continue", "hold": "hold for QA (deviation)", "abort": "abort"}
# Value keys printed by their own block, not in the generic values table.
_VALUE_BLOCKS = frozenset({"comment", "lots"})
_TRUE = ("yes", "true", "1", True)


def build(record: Mapping[str, Any], time_zone: str) -> dict[str, Any]:
    """Everything the template needs, from the record alone."""
    batch = record["batch"]
    audit = [_audit_view(i, entry) for i, entry in enumerate(record["audit"], start=1)]
    steps = [_step_view(n, step) for n, step in enumerate(record["steps"], start=1)]
    by_id = {step["step_id"]: step for step in steps}
    # Comments and device faults are audit events naming a step: show them in the step too,
    # so a reader of the step sees everything said about it without the appendix.
    for entry in audit:
        step = by_id.get(entry["step_ref"] or "")
        if step is not None and entry["kind"] in ("COMMENT", "DEVICE FAULT"):
            step["events"].append(entry)
    deviations = [
        _deviation_view(n, dev, by_id) for n, dev in enumerate(record.get("deviations") or [], 1)
    ]
    for dev in deviations:
        step = dev["step"]
        if step is not None:
            step["deviations"].append(dev)
    holds = _holds(audit, deviations)
    release = record.get("release")
    state = str(batch.get("state") or "")
    return {
        "record_format": record["format"],
        "batch": batch,
        "site": record.get("site") or {"name": "", "time_zone": time_zone},
        "time_zone": time_zone,
        "equipment": sorted((str(k), v) for k, v in (batch.get("equipment") or {}).items()),
        "equipment_register": _equipment_register(record.get("equipment_register")),
        "parameters": list(record.get("parameters") or []),
        "steps": steps,
        "deviations": deviations,
        "holds": holds,
        "genealogy": _genealogy(record.get("genealogy")),
        # Named on the materials and deviations sections: where their data lives.
        "external_systems": {"wms": "", "qms": "", **(record.get("external_systems") or {})},
        "state_changes": _state_changes(record.get("state_changes") or []),
        "exceptions": _exceptions(steps, audit, by_id, deviations),
        "failed_count": sum(1 for s in steps if s["failed"]),
        "altered_count": sum(1 for s in steps if s["altered"]),
        "alert_count": sum(1 for s in steps if s["alert"]),
        "release": release,
        "release_reason": _release_reason(record, audit),
        "cover": _cover(state, release, audit),
        "audit": audit,
        "generated_at": record["generated_at"],
    }


# --- steps -------------------------------------------------------------------------------


def _step_view(number: int, step: Mapping[str, Any]) -> dict[str, Any]:
    values = step.get("values") or {}
    plan = step.get("plan") or {}
    limits = step.get("limits") or _limits(plan.get("limits"))
    alert_limits = _limits(plan.get("alert_limits"))
    result = str(step["result"])
    corrections = [_correction_view(c) for c in step.get("corrections") or []]
    return {
        "number": number,
        "anchor": f"step-{number}",
        "step_id": step["step_id"],
        "kind": step["kind"],
        "kind_name": KIND_NAMES.get(step["kind"], str(step["kind"]).replace("_", " ").title()),
        "title": step["title"],
        "instruction": step["instruction"],
        "unit_procedure": step["unit_procedure"],
        "operation": step["operation"],
        "result": result,
        "failed": result == "fail",
        "alert": _is_alert(step, values, alert_limits),
        # Only an explicit False is an alteration: records from before the field existed
        # carry no verdict, and printing them as ALTERED would be a false accusation.
        "altered": step.get("signature_verified") is False,
        "readings": _readings(values),
        "lots_text": str(values.get("lots") or ""),
        "unit": step.get("unit"),
        "limits": limits,
        "alert_limits": alert_limits,
        "planned": _planned(plan),
        "equipment_id": step.get("equipment_id"),
        "device": _with_defaults(step.get("device"), _DEVICE_DEFAULTS),
        "materials": [_with_defaults(m, _MOVE_DEFAULTS) for m in step.get("materials") or []],
        "comment": (step.get("comment") or "").strip(),
        "signature": step.get("signature"),
        "verification": step.get("verification"),
        "version": step.get("version") or 1,
        "correction_reason": step.get("correction_reason") or "",
        "corrections": corrections,
        "events": [],
        "deviations": [],
    }


def _correction_view(old: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "version": old.get("version"),
        "readings": _readings(old.get("values") or {}),
        "result": old.get("result"),
        "reason": old.get("reason") or "",
        "signature": old.get("signature"),
        "altered": old.get("signature_verified") is False,
    }


def _limits(raw: object) -> dict[str, str] | None:
    if isinstance(raw, Mapping) and "low" in raw and "high" in raw:
        return {"low": str(raw["low"]), "high": str(raw["high"]), "unit": str(raw.get("unit", ""))}
    return None


def _decimal(value: object) -> Decimal | None:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _is_alert(
    step: Mapping[str, Any], values: Mapping[str, Any], alert_limits: Mapping[str, str] | None
) -> bool:
    """Outside the alert limits: flagged for review, no action (the action limits decide
    pass/fail). The engine's own flag counts; so does the recorded value against the plan."""
    if step.get("alert") in _TRUE or values.get("alert") in _TRUE or step["result"] == "alert":
        return True
    if alert_limits is None:
        return False
    value = _decimal(values.get("value"))
    low, high = _decimal(alert_limits["low"]), _decimal(alert_limits["high"])
    if value is None or low is None or high is None:
        return False
    return not (low <= value <= high)


def _readings(values: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(label, value, unit) rows: the record's `unit` belongs to its `value` only."""
    unit = str(values.get("unit") or "")
    rows = []
    for name, value in values.items():
        if name == "unit" or name in _VALUE_BLOCKS:
            continue
        shown = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        rows.append((_label(name), shown, unit if name == "value" else ""))
    return rows


def _planned(plan: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    known = {key for key, _ in _PLAN_LABELS}
    for key, label in _PLAN_LABELS:
        if key not in plan or _PLAN_DEFAULTS.get(key) == plan[key]:
            continue
        rows.append((label, _plan_value(key, plan[key], plan)))
    for key in sorted(set(plan) - known):
        if key in ("unit",) or key.startswith("_"):
            continue
        rows.append((_label(key), _plan_value(key, plan[key], plan)))
    return rows


def _plan_value(key: str, value: Any, plan: Mapping[str, Any]) -> str:
    unit = str(plan.get("unit") or "")
    if key == "material" and isinstance(value, Mapping):
        text = (
            f"{value.get('material_code', '')} {value.get('material_name', '')}: target "
            f"{value.get('target', '')} {value.get('unit', '')}, accepted "
            f"{value.get('low', '')} \u2013 {value.get('high', '')} {value.get('unit', '')}"
        )
        if value.get("tolerance_percent"):
            text += f" (\u00b1{value['tolerance_percent']} %)"
        elif value.get("tolerance_absolute"):
            text += f" (\u00b1{value['tolerance_absolute']} {value.get('unit', '')})"
        if value.get("lot_status") and value["lot_status"] != "released":
            text += f"; lots in status {value['lot_status']}"
        return text
    if key in ("limits", "alert_limits") and isinstance(value, Mapping):
        return f"{value.get('low', '')} \u2013 {value.get('high', '')} {value.get('unit', '')}"
    if key in _DURATIONS:
        return _duration(value)
    if key == "speed_rpm":
        return f"{value} rpm"
    if key == "setpoint":
        return f"{value} {unit}".strip()
    if key == "on_fail":
        return _ON_FAIL.get(str(value), str(value))
    if key == "target_from":
        return f"the result of step {value}"
    if isinstance(value, str | int | float | bool):
        return str(value)
    return json.dumps(value, sort_keys=True)


def _duration(value: object) -> str:
    try:
        seconds = int(str(value))
    except ValueError:
        return str(value)
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    text = f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"
    return f"{text} {rest:02d} s ({seconds} s)" if rest else f"{text} ({seconds} s)"


def _label(key: object) -> str:
    text = str(key).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


# --- audit, exceptions, holds --------------------------------------------------------------


def _audit_view(index: int, entry: Mapping[str, Any]) -> dict[str, Any]:
    action = str(entry["action"])
    detail = _detail(entry["detail"])
    kind = _EVENT_KINDS.get(action)
    if kind is None and action.startswith("mix.failed"):
        kind = "DEVICE FAULT"
    step_ref = detail.get("step") if isinstance(detail.get("step"), str) else None
    return {
        "number": index,
        "anchor": f"audit-{index}",
        "at": entry["at"],
        "actor": entry["actor"],
        "action": action,
        "subject": entry["subject"],
        "detail": entry["detail"],
        "fields": detail,
        "kind": kind,
        "step_ref": step_ref,
        "text": _event_text(kind, detail),
        "hash": str(entry.get("hash") or "")[:16],
    }


def _detail(raw: object) -> dict[str, Any]:
    """The audit detail as a dict: the store keeps JSON text, older records free text."""
    if isinstance(raw, Mapping):
        return dict(raw)
    if isinstance(raw, str) and raw.startswith("{"):
        try:
            parsed = json.loads(raw)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _event_text(kind: str | None, detail: Mapping[str, Any]) -> str:
    if kind == "COMMENT":
        return str(detail.get("comment", ""))
    if kind in ("DEVICE FAULT", "LATE SIGNATURE"):
        return str(detail.get("error", ""))
    if kind in ("HOLD", "RESTART", "ABORT", "REJECTED"):
        return str(detail.get("reason", ""))
    return ""


def _deviation_view(
    number: int, dev: Mapping[str, Any], by_id: Mapping[str, dict[str, Any]]
) -> dict[str, Any]:
    step = by_id.get(str(dev.get("phase_instance") or ""))
    return {
        **_with_defaults(dev, _DEVIATION_DEFAULTS),
        "anchor": f"deviation-{number}",
        "step": step,
        "closed": dev.get("status") == "closed",
    }


def _holds(audit: list[dict[str, Any]], deviations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every period the batch or a phase was held: from, until, how long and why."""
    holds: list[dict[str, Any]] = []
    open_hold: dict[str, Any] | None = None
    for entry in audit:
        if entry["action"] == "batch.held":
            open_hold = {
                "what": "Batch held",
                "anchor": entry["anchor"],
                "from": entry["at"],
                "by": entry["actor"],
                "reason": entry["text"],
                "until": None,
                "ended_by": "",
            }
            holds.append(open_hold)
        elif open_hold is not None and entry["action"] in ("batch.running", "batch.aborted"):
            open_hold["until"] = entry["at"]
            verb = "restarted" if entry["action"] == "batch.running" else "aborted"
            open_hold["ended_by"] = f"{verb} by {entry['actor']}: {entry['text']}"
            open_hold = None
    for dev in deviations:
        if dev["step"] is None:
            continue
        holds.append(
            {
                "what": f"Step {dev['step']['number']} held by {dev['deviation_id']}",
                "anchor": dev["anchor"],
                "from": dev.get("opened_at"),
                "by": dev.get("opened_by", ""),
                "reason": dev.get("title", ""),
                "until": dev.get("disposition_at"),
                "ended_by": f"disposition {dev.get('disposition', '')} by "
                f"{dev.get('disposition_by', '')}"
                if dev["closed"]
                else "",
            }
        )
    for hold in holds:
        hold["duration"] = _elapsed(hold["from"], hold["until"])
    return holds


def _elapsed(start: object, end: object) -> str:
    began, ended = parse_time(start), parse_time(end)
    if began is None:
        return "unknown"
    if ended is None:
        return "not ended"
    return _duration(int((ended - began).total_seconds()))


def _exceptions(
    steps: list[dict[str, Any]],
    audit: list[dict[str, Any]],
    by_id: Mapping[str, Any],
    deviations: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for step in steps:
        where = f"Step {step['number']}: {step['title']}"
        if step["altered"]:
            rows.append(_row("ALTERED", where, "stored data no longer matches its signature",
                             None, step["anchor"]))
        if step["failed"]:
            rows.append(_row("FAILED", where, _values_text(step), None, step["anchor"]))
        if step["alert"]:
            rows.append(_row("ALERT", where, _values_text(step, alert=True), None,
                             step["anchor"]))
        if step["corrections"]:
            sig = step["signature"] or {}
            first = step["corrections"][0]
            was = "; ".join(f"{n} {v}{' ' + u if u else ''}" for n, v, u in first["readings"])
            now = "; ".join(f"{n} {v}{' ' + u if u else ''}" for n, v, u in step["readings"])
            rows.append(_row("CORRECTION", where,
                             f"{was} ({str(first['result']).upper()}) corrected to {now} "
                             f"({step['result'].upper()}), version {step['version']}: "
                             f"{step['correction_reason'] or 'no reason recorded'}",
                             _who(sig.get("full_name"), sig.get("signed_at")), step["anchor"]))
        if step["comment"]:
            rows.append(_row("COMMENT", where, step["comment"], None, step["anchor"]))
    for dev in deviations:
        where = (f"Step {dev['step']['number']}: {dev['step']['title']}" if dev["step"]
                 else "Batch")
        if dev["closed"]:
            state = f"disposition {str(dev['disposition']).upper()}: {dev['rationale']}"
        else:
            state = f"{str(dev['status']).upper()}, no disposition"
        rows.append(_row("DEVIATION", where,
                         f"{dev.get('deviation_id', '')} ({dev.get('classification', '')}) "
                         f"{dev.get('title', '')}; {state}",
                         _who(dev.get("opened_by"), dev.get("opened_at")), dev["anchor"]))
    for entry in audit:
        if entry["kind"] is None:
            continue
        step = by_id.get(entry["step_ref"] or "")
        where = f"Step {step['number']}: {step['title']}" if step else "Batch"
        # Link to the step when the event concerns one (its comments are shown there),
        # otherwise to the event's row in the audit-trail appendix.
        target = step["anchor"] if step else entry["anchor"]
        rows.append(_row(entry["kind"], where, entry["text"], _who(entry["actor"], entry["at"]),
                         target))
    return sorted(rows, key=lambda row: EXCEPTION_ORDER.index(row["kind"]))


def _who(actor: object, at: object) -> dict[str, Any]:
    return {"actor": str(actor or ""), "at": at}


def _row(kind: str, where: str, text: str, who: dict[str, Any] | None, anchor: str) -> dict:
    prefix = anchor.rsplit("-", 1)[0]
    label = {"step": "step", "audit": "audit", "deviation": "deviation"}.get(prefix, prefix)
    return {"kind": kind, "where": where, "text": text, "who": who, "anchor": anchor,
            "link_text": f"{label} {anchor.rsplit('-', 1)[-1]}"}


def _values_text(step: Mapping[str, Any], alert: bool = False) -> str:
    parts = [f"{name}: {value}{' ' + unit if unit else ''}"
             for name, value, unit in step["readings"]]
    limits = step.get("alert_limits") if alert else step.get("limits")
    if limits:
        what = "alert limits" if alert else "limits"
        parts.append(f"{what} {limits['low']} to {limits['high']} {limits['unit']}")
    return "; ".join(parts) or f"result {step['result']}"


def _release_reason(record: Mapping[str, Any], audit: list[dict[str, Any]]) -> str:
    """The disposition's reason: the record's own, else the one in its audit entry."""
    release = record.get("release") or {}
    reason = str(release.get("reason") or "")
    if reason:
        return reason
    decision = release.get("decision")
    for entry in reversed(audit):
        if decision and entry["action"] == f"batch.{decision}":
            return str(entry["fields"].get("reason", ""))
    return ""


def _cover(
    state: str, release: Mapping[str, Any] | None, audit: list[dict[str, Any]]
) -> dict[str, str]:
    """The cover banner: one word for the outcome and one sentence on what it means."""
    if state == "released":
        return {"css": "released", "word": "RELEASED",
                "sentence": "QA has signed the release of this batch."}
    if state == "rejected":
        return {"css": "rejected", "word": "REJECTED",
                "sentence": "QA has rejected this batch: the product must not be released."}
    if state == "aborted":
        reason = next((e["text"] for e in reversed(audit) if e["kind"] == "ABORT"), "")
        tail = f" Reason: {reason}" if reason else ""
        return {"css": "aborted", "word": "ABORTED",
                "sentence": "Execution was stopped before completion; the product must not "
                f"be released.{tail}"}
    return {"css": "open", "word": f"NOT RELEASED ({state.upper() or 'UNKNOWN'})",
            "sentence": "No disposition has been signed; this is not a final record."}


def _state_changes(changes: list[Any]) -> list[dict[str, Any]]:
    return [
        {"to": str(c.get("to", "")), "reason": str(c.get("reason", "")),
         "signature": c.get("signature")}
        for c in changes
        if isinstance(c, Mapping)
    ]


def _genealogy(raw: object) -> dict[str, list[dict[str, Any]]]:
    data = raw if isinstance(raw, Mapping) else {}
    return {
        key: [_with_defaults(item, _LOT_DEFAULTS) for item in data.get(key) or []]
        for key in ("inputs", "outputs", "links")
    }


# Optional fields of the record's sections: a record from another WMS/QMS, or an older
# one, may leave them out; the template prints them blank rather than failing.
_DEVICE_DEFAULTS = {"device_value": None, "device_unit": None, "raw_frames": [], "serial": "",
                    "read_at": None}
_MOVE_DEFAULTS = {"kind": "", "material_code": "", "material_name": "", "lot_number": "",
                  "sscc": "", "quantity": "", "unit": "", "expiry": None, "lot_status": "",
                  "from_bin": "", "to_bin": "", "recorded_by": ""}
_DEVIATION_DEFAULTS = {"deviation_id": "", "title": "", "classification": "", "origin": "",
                       "opened_at": None, "opened_by": "", "description": "", "lots": [],
                       "notes": [], "status": "", "disposition": "", "rationale": "",
                       "capa_ref": "", "signature": None, "disposition_by": "",
                       "disposition_at": None, "recorded_by": ""}
_REGISTER_DEFAULTS = {"equipment_id": "", "equipment_class": "", "description": "",
                      "serial_number": None, "calibration_due": None, "cleaning_status": "",
                      "cleaned_at": None}
_LOT_DEFAULTS = {"material_code": "", "material_name": "", "lot_number": "", "supplier_lot": "",
                 "quantity": "", "unit": "", "expiry": None, "lot_status": "", "output_lot": "",
                 "input_lot": "", "input_material": "", "recorded_by": ""}


def _with_defaults(raw: object, defaults: Mapping[str, Any]) -> Any:
    if not isinstance(raw, Mapping):
        return None if raw is None else raw
    return {**defaults, **raw}


def _equipment_register(raw: object) -> list[dict[str, Any]]:
    """The equipment entries the record carries (a snapshot at generation time)."""
    if not isinstance(raw, list):
        return []
    return [_with_defaults(item, _REGISTER_DEFAULTS) for item in raw if isinstance(item, Mapping)]


def calibration_text(entry: Mapping[str, Any], used_on: object) -> str:
    """Calibration status of a device for the day it was used."""
    due = entry.get("calibration_due")
    if not due:
        return "not subject to calibration"
    used = parse_time(used_on)
    try:
        due_day = dt.date.fromisoformat(str(due))
    except ValueError:
        return f"calibration due {due}"
    if used is None:
        return f"calibration due {due}"
    ok = used.date() <= due_day
    return f"calibration due {due}: {'in calibration' if ok else 'OVERDUE'} when used"
