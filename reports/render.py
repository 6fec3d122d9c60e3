"""Render the executed batch record (the record dict) as a PDF/A-3b document.

The PDF carries its own machine-readable sources as PDF/A-3 associated files: `record.json`
(relationship Data) and `recipe.yaml` (relationship Source), so an auditor can check the
printed pages against the data without access to ebr.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import jinja2
import pydyf
from markupsafe import Markup
from weasyprint import HTML, Attachment
from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

from reports import timefmt, view
from reports.contract import RECIPE_ATTACHMENT, RECORD_ATTACHMENT, RECORD_FORMAT
from reports.errors import RenderError, require_worker_thread
from reports.publish import sha256_hex

# The only URLs a document may load: our own packaged assets, under a scheme that no
# network or file system handler understands.
ASSET_SCHEME = "ebr-asset:"
_ASSETS: Mapping[str, tuple[str, str]] = {
    "ebmr.css": ("templates/ebmr.css", "text/css"),
    # Fonts ship with the package so the PDF does not depend on the host's fontconfig:
    # the same record renders with the same glyphs and metrics on every worker.
    **{
        f"fonts/{name}.ttf": (f"fonts/{name}.ttf", "font/ttf")
        for name in (
            "DejaVuSans",
            "DejaVuSans-Bold",
            "DejaVuSans-Oblique",
            "DejaVuSans-BoldOblique",
            "DejaVuSansMono",
            "DejaVuSansMono-Bold",
        )
    },
}
_TEMPLATE = "ebmr.html"
_STYLESHEET = "ebmr.css"
# WeasyPrint promises no thread safety (Pango, fontconfig and cairo state is shared and
# crashes under concurrent use have been reported). Its layout is pure Python, so the GIL
# already serialises most of the work: a lock costs little. Scale out with processes.
_WEASYPRINT_LOCK = threading.Lock()


@dataclass(frozen=True)
class RenderedPdf:
    pdf: bytes
    pages: int


def canonical_json(record: Mapping[str, Any]) -> bytes:
    """The bytes embedded as record.json: sorted keys, no whitespace, UTF-8, strict JSON.

    Deterministic so that the same record always yields the same attachment and hash.
    """
    try:
        text = json.dumps(
            record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise RenderError(
            f"the batch record is not plain JSON data ({exc}); pass strings for decimals "
            "and timestamps, as the ebr.batch-record/1 contract requires"
        ) from exc
    return text.encode("utf-8")


def render_html(record: Mapping[str, Any], recipe_yaml: str) -> str:
    """The HTML that `render_batch_record` lays out (exposed for previews and tests)."""
    _check_record(record)
    return _html(record, canonical_json(record), recipe_yaml)


def render_batch_record(record: dict, recipe_yaml: str) -> RenderedPdf:
    """Lay out `record` as a PDF/A-3b batch record with record.json and recipe.yaml embedded."""
    require_worker_thread("render_batch_record")
    _check_record(record)
    if not isinstance(recipe_yaml, str):
        raise RenderError(f"recipe_yaml must be the recipe text, got {type(recipe_yaml).__name__}")
    record_json = canonical_json(record)
    html = _html(record, record_json, recipe_yaml)
    # Attachment and document dates are the record's generation time, not the render clock:
    # the embedded files are a snapshot taken then, whenever (and however often) it is printed.
    stamp = _generated_at(record).replace(tzinfo=None)
    fetcher = PackageAssetFetcher()
    attachments = [
        Attachment(
            string=record_json,
            name=RECORD_ATTACHMENT,
            description="Executed batch record (ebr.batch-record/1), canonical JSON",
            relationship="Data",
            created=stamp,
            modified=stamp,
            url_fetcher=fetcher,
        ),
        Attachment(
            string=recipe_yaml.encode("utf-8"),
            name=RECIPE_ATTACHMENT,
            description="Master recipe as executed",
            relationship="Source",
            created=stamp,
            modified=stamp,
            url_fetcher=fetcher,
        ),
    ]
    try:
        with _WEASYPRINT_LOCK, _source_date_epoch(_generated_at(record)):
            # No base_url: a relative URL has nothing to resolve against and is dropped.
            document = HTML(string=html, url_fetcher=fetcher).render()
            pdf = document.write_pdf(
                pdf_variant="pdf/a-3b",
                # WeasyPrint 70 spells the old `srgb=True` as an sRGB output intent.
                output_intent="srgb",
                attachments=attachments,
                finisher=_finish_pdf,
            )
    except FatalURLFetchingError as exc:
        raise RenderError(
            f"the batch record template tried to load an external resource ({exc.__cause__}); "
            f"only packaged assets under {ASSET_SCHEME} are allowed"
        ) from exc
    except Exception as exc:
        # WeasyPrint raises a wide variety of layout/font errors; the activity needs one type.
        raise RenderError(f"WeasyPrint could not lay out the batch record: {exc}") from exc
    return RenderedPdf(pdf=pdf, pages=len(document.pages))


@contextlib.contextmanager
def _source_date_epoch(when: dt.datetime) -> Iterator[None]:
    """Pin the clock fontTools writes into each subset font's `head` table.

    Without it the same record renders to different bytes every second (the font subsets'
    modification times, and the file /ID derived from them); with it the PDF before
    signing is byte-identical for the same record. fontTools honours the reproducible-builds
    variable; it is process-wide, so it is only set while holding the WeasyPrint lock.
    """
    previous = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = str(int(when.timestamp()))
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)
        else:
            os.environ["SOURCE_DATE_EPOCH"] = previous


_ATTACHMENT_TYPES = {RECORD_ATTACHMENT: "application/json", RECIPE_ATTACHMENT: "application/yaml"}


def _finish_pdf(_document: object, pdf: pydyf.PDF) -> None:
    """Last touches on the PDF object tree before WeasyPrint serialises it."""
    # No document information dictionary: PDF/A wants it to mirror the XMP metadata, and
    # the signer later rewrites the XMP producer differently from the Info one. The XMP
    # packet carries title, dates and the PDF/A identification on its own.
    pdf.info.clear()
    # Uncompressed XMP, as the XMP packet wrapper intends: archive ingest tools find the
    # PDF/A identification by scanning the bytes, without a PDF parser.
    for obj in pdf.objects:
        if isinstance(obj, pydyf.Stream) and obj.extra.get("Type") == "/Metadata":
            obj.compress = False
    for obj in pdf.objects:
        if not isinstance(obj, dict) or obj.get("Type") != "/Filespec":
            continue
        name = getattr(obj.get("UF"), "string", None)
        mime = _ATTACHMENT_TYPES.get(name)
        if mime is None:
            continue
        # The stdlib MIME table does not know .yaml; PDF/A-3 wants a real type per file.
        stream = pdf.objects[int(obj["EF"]["F"].split()[0])]
        stream.extra["Subtype"] = "/" + mime.replace("/", "#2f")
    # WeasyPrint lists each attachment twice in the catalog's /AF (from the name tree and
    # from the file specs); one entry per associated file is what PDF/A-3 describes.
    associated = pdf.catalog.get("AF")
    if associated is not None:
        unique = list(dict.fromkeys(associated))
        pdf.catalog["AF"] = pydyf.Array(unique)


class PackageAssetFetcher(URLFetcher):
    """URL fetcher that serves only this package's own assets and refuses everything else.

    No file:// (the record could otherwise pull local files into the PDF), no network
    (SSRF, and rendering must not hang on an unreachable host). Refusals are fatal: a
    regulated record with a silently missing piece is worse than no record.
    """

    def __init__(self) -> None:
        super().__init__(allowed_protocols=(), allow_redirects=False, fail_on_errors=True)

    def fetch(self, url: str, headers: Mapping[str, str] | None = None) -> URLFetcherResponse:
        name = url.removeprefix(ASSET_SCHEME) if url.startswith(ASSET_SCHEME) else None
        if name is None or name not in _ASSETS:
            raise PermissionError(f"refused to load {url!r}")
        path, mime = _ASSETS[name]
        body = _asset_bytes(path)
        return URLFetcherResponse(url, body=body, headers={"Content-Type": mime})


@cache
def _asset_bytes(path: str) -> bytes:
    # Cached: the fonts are 3 MiB read for every rendering otherwise.
    return resources.files("reports").joinpath(path).read_bytes()


def _html(record: Mapping[str, Any], record_json: bytes, recipe_yaml: str) -> str:
    try:
        return (
            _environment().get_template(_TEMPLATE).render(_view(record, record_json, recipe_yaml))
        )
    except jinja2.TemplateError as exc:
        raise RenderError(f"the batch record template failed: {exc}") from exc


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reports", "templates"),
        # Everything the template prints is untrusted record text: escape by default, and
        # fail loudly on a name the view does not provide instead of printing nothing.
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
    )
    env.filters["when"] = _format_time
    return env


def _view(record: Mapping[str, Any], record_json: bytes, recipe_yaml: str) -> dict[str, Any]:
    time_zone = _time_zone(record)
    generated = _generated_at(record)
    context = view.build(record, time_zone)
    registered = {str(e.get("equipment_id")): e for e in context["equipment_register"]}
    for step in context["steps"]:
        device_id = (step["device"] or {}).get("equipment_id") or step["equipment_id"]
        entry = registered.get(str(device_id)) if device_id else None
        used_on = (step["device"] or {}).get("read_at") or (step["signature"] or {}).get(
            "signed_at"
        )
        step["calibration"] = view.calibration_text(entry, used_on) if entry else None
        step["register_entry"] = entry
    return {
        **context,
        "generated_at_w3c": generated.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        "record_sha256": sha256_hex(record_json),
        "recipe_yaml_sha256": sha256_hex(recipe_yaml.encode("utf-8")),
        "recipe_yaml_bytes": len(recipe_yaml.encode("utf-8")),
        "stylesheet_url": ASSET_SCHEME + _STYLESHEET,
    }


def _time_zone(record: Mapping[str, Any]) -> str:
    site = record.get("site")
    name = site.get("time_zone") if isinstance(site, Mapping) else None
    return str(name or "UTC")


def _generated_at(record: Mapping[str, Any]) -> dt.datetime:
    """generated_at in UTC (the document date of the PDF)."""
    parsed = _parse_time(record["generated_at"])
    if parsed is None:
        raise RenderError(
            f"record.generated_at {record['generated_at']!r} is not an ISO 8601 timestamp "
            "with a UTC offset"
        )
    return parsed.astimezone(dt.UTC)


def _parse_time(value: object) -> dt.datetime | None:
    return timefmt.parse(value)


@jinja2.pass_context
def _format_time(context: jinja2.runtime.Context, value: object) -> str | Markup:
    """A recorded moment in the site's time zone, with the zone and its UTC offset."""
    if value is None or value == "":
        return Markup("&mdash;")
    parsed = _parse_time(value)
    if parsed is None:
        # Print what was recorded rather than hide it; the offset is missing or it is garbled.
        return f"{value} (no UTC offset recorded)"
    return timefmt.format_local(parsed, context.get("time_zone") or "UTC")


# --- record contract check ----------------------------------------------------------------

_TOP_KEYS = ("format", "generated_at", "batch", "steps", "release", "audit")
_BATCH_KEYS = (
    "batch_id",
    "state",
    "product_code",
    "product_name",
    "recipe_id",
    "recipe_version",
    "recipe_sha256",
    "batch_size",
    "batch_unit",
    "created_at",
    "created_by",
    "completed_at",
    "released_at",
    "equipment",
)
_STEP_KEYS = (
    "step_id",
    "kind",
    "title",
    "instruction",
    "unit_procedure",
    "operation",
    "result",
)
_SIGNATURE_KEYS = (
    "signature_id",
    "full_name",
    "username",
    "meaning",
    "signed_at",
    "content_sha256",
)
_AUDIT_KEYS = ("at", "actor", "action", "subject", "detail")
_DEVICE_KEYS = ("equipment_id", "serial", "raw_frames", "read_at")


def _check_record(record: object) -> None:
    """Reject a record that breaks the contract, naming every problem at once.

    Only structure is checked; values are printed as recorded.
    """
    if not isinstance(record, Mapping):
        raise RenderError(f"the batch record must be a dict, got {type(record).__name__}")
    problems = _missing(record, _TOP_KEYS, "record")
    if "generated_at" in record and _parse_time(record["generated_at"]) is None:
        problems.append(
            f"record.generated_at {record['generated_at']!r} is not an ISO 8601 timestamp "
            "with a UTC offset"
        )
    if record.get("format", RECORD_FORMAT) != RECORD_FORMAT:
        problems.append(
            f"record.format is {record['format']!r}; this renderer handles {RECORD_FORMAT}"
        )
    try:
        timefmt.zone(_time_zone(record))
    except timefmt.UnknownTimeZone as exc:
        problems.append(f"site.time_zone: {exc}")
    if "batch" in record:
        problems += _check_object(record["batch"], _BATCH_KEYS, "batch")
    for index, step in enumerate(_list(record, "steps", problems)):
        problems += _check_step(step, f"steps[{index}]")
    release = record.get("release")
    if release is not None:
        problems += _check_object(release, ("decision", "signature"), "release")
        if isinstance(release, Mapping):
            problems += _check_signature(release.get("signature"), "release.signature")
    for index, entry in enumerate(_list(record, "audit", problems)):
        problems += _check_object(entry, _AUDIT_KEYS, f"audit[{index}]")
    if problems:
        shown = "; ".join(problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise RenderError(f"the batch record does not follow {RECORD_FORMAT}: {shown}{more}")


def _check_step(step: object, where: str) -> list[str]:
    problems = _check_object(step, _STEP_KEYS, where)
    if not isinstance(step, Mapping):
        return problems
    if not isinstance(step.get("values") or {}, Mapping):
        problems.append(f"{where}.values must be an object")
    if step.get("limits") is not None:
        problems += _check_object(step["limits"], ("low", "high", "unit"), f"{where}.limits")
    device = step.get("device")
    if device is not None:
        problems += _check_object(device, _DEVICE_KEYS, f"{where}.device")
        if isinstance(device, Mapping) and not isinstance(device.get("raw_frames", []), list):
            problems.append(f"{where}.device.raw_frames must be a list")
    problems += _check_signature(step.get("signature"), f"{where}.signature")
    return problems


def _check_object(obj: object, keys: Iterable[str], where: str) -> list[str]:
    if not isinstance(obj, Mapping):
        return [f"{where} must be an object"]
    return _missing(obj, keys, where)


def _list(record: Mapping[str, Any], key: str, problems: list[str]) -> list[Any]:
    """record[key] if it is a list; a missing key is already reported by the caller."""
    value = record.get(key, [])
    if isinstance(value, list):
        return value
    problems.append(f"{key} must be a list")
    return []


def _check_signature(signature: object, where: str) -> list[str]:
    # A missing signature is printed as NOT SIGNED (a rejected batch may stop mid-way);
    # a half-filled one is a bug upstream.
    if signature is None:
        return []
    if not isinstance(signature, Mapping):
        return [f"{where} must be an object or null"]
    return _missing(signature, _SIGNATURE_KEYS, where)


def _missing(obj: Mapping[str, Any], keys: Iterable[str], where: str) -> list[str]:
    return [f"{where}.{key} is missing" for key in keys if key not in obj]
