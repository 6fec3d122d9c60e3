"""`ebr worker`: the composition root of the worker process.

Settings in; adapters built once and injected into the activity classes; the
worker runs until SIGINT/SIGTERM. A weighing station's worker is `runtime/station_worker.py`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import signal
import sys

from activities.devices import DeviceActivities
from activities.labels import LabelActivities
from activities.qms import QmsActivities
from activities.records import RecordActivities
from activities.reports import ReportActivities
from activities.wms import WmsActivities
from observability.logs import configure_logging
from observability.temporal import configure_tracing
from runtime import report_signing
from runtime.equipment import load_register
from runtime.temporal_client import TemporalConfigError, TemporalUnreachable, connect_options
from runtime.worker import ACTIVITY_THREADS, build_worker, connect_client
from settings.config import Settings
from store.batch_record import BatchRecordStore
from store.db import make_engine
from store.migrate import SchemaNotCurrent, prepare
from store.recipes import RecipeStore
from wms.wiring import build_qms, build_wms

log = logging.getLogger("ebr.worker")


def production_activities(settings: Settings) -> list[object]:
    engine = make_engine(settings.resolved_database_url)
    prepare(engine, settings.auto_upgrade_schema)
    store = BatchRecordStore(
        engine, site_name=settings.site_name, site_timezone=settings.site_timezone,
        external_wms_url=settings.wms_url or "", external_qms_url=settings.qms_url or "",
    )
    register = load_register(settings)

    def identity():  # type: ignore[no-untyped-def]
        # Resolved on every report attempt: a broken key leaves the signature pending and
        # batches running, instead of stopping the worker.
        return report_signing.signing_source(settings)

    def timestamping():  # type: ignore[no-untyped-def]
        return report_signing.timestamping(settings)

    wms = build_wms(settings, engine)  # built-in, or EBR_WMS_URL's HTTP adapter
    return [
        RecordActivities(store),
        WmsActivities(wms),
        QmsActivities(build_qms(settings, engine, wms)),
        DeviceActivities(
            open_scale=register.open_scale, open_mixer=register.open_mixer, register=register,
            open_plc=register.open_plc,
        ),
        LabelActivities(settings.var_dir / "labels"),
        ReportActivities(
            store, RecipeStore(engine), settings.reports_dir, identity, settings.site_name,
            timestamping=timestamping,
            equipment=report_signing.equipment_lookup(register),
        ),
    ]


async def _run(settings: Settings) -> None:
    activities = production_activities(settings)
    client = await connect_client(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with concurrent.futures.ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        worker = build_worker(client, settings.task_queue, activities, executor)
        async with worker:
            log.warning("worker polling %s on %s", settings.task_queue,
                        connect_options(settings).describe())
            await stop.wait()


def run_worker(settings: Settings) -> int:
    configure_logging(json_logs=settings.log_format == "json", level=settings.log_level)
    if settings.otel_enabled:
        configure_tracing("ebr-worker")
    try:
        asyncio.run(_run(settings))
    except (SchemaNotCurrent, TemporalConfigError, TemporalUnreachable) as exc:
        print(f"ebr worker: {exc}", file=sys.stderr)
        return 1
    return 0
