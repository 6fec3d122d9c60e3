"""The demo site's equipment register, written when the one-machine stack starts.

The shipped register (`devices/equipment.yaml`) holds fixed dates, but the example
recipes require equipment cleaned within 24 to 72 hours. So `ebr up` (outside
production, and only when the site has no register of its own) writes a copy to
`var/run/demo-equipment.yaml` in which every piece of equipment was cleaned when the
stack started and is calibrated for a year from then; the API, the worker and the
simulators all read that copy (`runtime.equipment.register_path`). A stack left running
for more than a day refuses the cooker as the register says, until it is restarted.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devices.register import DEFAULT_REGISTER
from settings.config import Settings

CALIBRATION_VALIDITY = timedelta(days=365)
_CLEANED_AT = re.compile(r"^(\s*cleaned_at:\s*)\S+", re.MULTILINE)
_CALIBRATION_DUE = re.compile(r"^(\s*calibration_due:\s*)\S+", re.MULTILINE)


def demo_register_path(settings: Settings) -> Path:
    return settings.var_dir / "run" / "demo-equipment.yaml"


def demo_register_text(now: datetime) -> str:
    """The shipped register with its cleaning and calibration dates relative to `now`."""
    text = DEFAULT_REGISTER.read_text(encoding="utf-8")
    cleaned = now.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    due = (now.astimezone(UTC) + CALIBRATION_VALIDITY).date().isoformat()
    text = _CLEANED_AT.sub(lambda m: m.group(1) + cleaned, text)
    text = _CALIBRATION_DUE.sub(lambda m: m.group(1) + due, text)
    header = (
        f"# Written by `ebr up` at {cleaned} from {DEFAULT_REGISTER.name}; rewritten at every\n"
        "# start. Put a site's own register in var/equipment.yaml instead of editing this.\n"
    )
    return header + text


def write_demo_register(settings: Settings, now: datetime | None = None) -> Path:
    path = demo_register_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(demo_register_text(now or datetime.now(UTC)), encoding="utf-8")
    tmp.replace(path)
    return path
