"""GS1 label parsing with biip: GTIN (01), lot (10), expiry (17), SSCC (00).

biip reports a wrong check digit in an `*_error` field instead of raising, so every
such field is checked here: a mistyped or damaged label must never identify material.
"""

from __future__ import annotations

from dataclasses import dataclass

import biip
from biip.gs1_messages import GS1Message

from wms.port import BadScan


@dataclass(frozen=True)
class Label:
    gtin: str = ""
    lot: str = ""
    expiry: str = ""  # ISO date
    sscc: str = ""


def parse_label(raw: str) -> Label:
    text = raw.strip()
    if not text:
        raise BadScan("The scan was empty: scan the label's GS1 barcode again.")
    try:
        if text.startswith("("):
            message = GS1Message.parse_hri(text)
        else:
            result = biip.parse(text)
            message = result.gs1_message
            if message is None:
                reason = result.gs1_message_error or "not a GS1 element string"
                raise BadScan(
                    f"The scanned code is not a GS1 label ({reason}). Scan the GS1-128 or "
                    "DataMatrix code that carries (01) GTIN and (10) lot."
                )
    except biip.ParseError as exc:
        raise BadScan(
            f"The label could not be read as GS1 ({exc}). Rescan it; if it fails again, "
            "the label is damaged: set the container aside and call the supervisor."
        ) from exc
    label: dict[str, str] = {}
    for es in message.element_strings:
        for error in (es.gtin_error, es.sscc_error, es.gln_error):
            if error:
                raise BadScan(
                    f"Check digit or format error on the label: {error.rstrip('.')}. "
                    "Do not use the material until the label is verified."
                )
        ai = es.ai.ai
        if ai in ("01", "02") and es.gtin is not None:
            label["gtin"] = es.gtin.value.zfill(14)
        elif ai == "10":
            label["lot"] = es.value
        elif ai == "17" and es.date is not None:
            label["expiry"] = es.date.isoformat()
        elif ai == "00" and es.sscc is not None:
            label["sscc"] = es.sscc.value
    if not label.get("sscc") and not (label.get("gtin") and label.get("lot")):
        raise BadScan(
            "The label carries neither an SSCC (00) nor a GTIN (01) with a lot (10): scan "
            "the material label, not the shipping or product label."
        )
    return Label(**label)
