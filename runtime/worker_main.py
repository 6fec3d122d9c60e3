"""`ebr worker`: the composition root of the worker process.

Settings in; adapters built once and injected into the activity classes; the
worker runs until SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import signal

from temporalio.client import Client

from activities.devices import DeviceActivities
from activities.qms import QmsActivities
from activities.records import RecordActivities
from activities.reports import ReportActivities
from activities.wms import WmsActivities
from qms.builtin import BuiltinQms
from reports.pki import ensure_signing_identity
from runtime.equipment import load_register
from runtime.worker import ACTIVITY_THREADS, build_worker
from settings.config import Settings
from store.batch_record import BatchRecordStore
from store.db import create_schema, make_engine
from store.recipes import RecipeStore
from wms.builtin import BuiltinWms

log = logging.getLogger("ebr.worker")


def production_activities(settings: Settings) -> list[object]:
    engine = make_engine(settings.resolved_database_url)
    create_schema(engine)
    store = BatchRecordStore(engine)
    register = load_register(settings)

    def identity():  # type: ignore[no-untyped-def]
        # Resolved on every report attempt: a broken key leaves the signature pending and
        # batches running, instead of stopping the worker.
        return ensure_signing_identity(
            settings.pki_dir, settings.secrets.signing_passphrase.encode(), settings.site_name
        )

    wms = BuiltinWms(engine)
    return [
        RecordActivities(store),
        WmsActivities(wms),
        QmsActivities(BuiltinQms(engine, wms)),
        DeviceActivities(
            open_scale=register.open_scale, open_mixer=register.open_mixer, register=register
        ),
        ReportActivities(
            store, RecipeStore(engine), settings.reports_dir, identity, settings.site_name,
            timestamp_url=settings.tsa_url,
            timestamp_roots=[settings.tsa_root] if settings.tsa_root else [],
        ),
    ]


async def _connect(settings: Settings, timeout_s: float = 60.0) -> Client:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            return await Client.connect(
                settings.temporal_target, namespace=settings.temporal_namespace
            )
        except RuntimeError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)


async def _run(settings: Settings) -> None:
    activities = production_activities(settings)
    client = await _connect(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with concurrent.futures.ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        worker = build_worker(client, settings.task_queue, activities, executor)
        async with worker:
            log.warning("worker polling %s on %s", settings.task_queue, settings.temporal_target)
            await stop.wait()


def run_worker(settings: Settings) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(_run(settings))
    return 0
