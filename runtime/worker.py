"""Composition root of the worker: settings in, adapters built once, injected into activities."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Sequence
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from activities.devices import DeviceActivities
from activities.records import RecordActivities
from activities.reports import ReportActivities
from devices.modbus_plc import MixerPlc
from devices.mtsics import MtSicsScale
from reports.pki import ensure_signing_identity
from runtime.equipment import load_register
from settings.config import Settings
from store.batch_record import BatchRecordStore
from store.db import create_schema, make_engine
from store.recipes import RecipeStore
from workflows.batch import BatchWorkflow

WORKFLOWS = [BatchWorkflow]


def production_activities(settings: Settings) -> list[object]:
    engine = make_engine(settings.resolved_database_url)
    create_schema(engine)
    store = BatchRecordStore(engine)
    register = load_register(settings)
    identity = ensure_signing_identity(
        settings.pki_dir, settings.secrets.signing_passphrase.encode(), settings.site_name
    )
    return [
        RecordActivities(store),
        DeviceActivities(
            open_scale=lambda eq: MtSicsScale(register.scale(eq)),
            open_mixer=lambda eq: MixerPlc(register.mixer(eq)),
        ),
        ReportActivities(store, RecipeStore(engine), settings.reports_dir, identity,
                         settings.site_name),
    ]


def activity_methods(instances: Sequence[object]) -> list[object]:
    """Every @activity.defn method of the given activity class instances."""
    methods = []
    for instance in instances:
        for name in dir(type(instance)):
            attr = getattr(instance, name)
            if callable(attr) and hasattr(attr, "__temporal_activity_definition"):
                methods.append(attr)
    return methods


def build_worker(
    client: Client,
    task_queue: str,
    activities: Sequence[object],
    executor: concurrent.futures.ThreadPoolExecutor,
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=activity_methods(activities),
        activity_executor=executor,
        max_concurrent_activities=32,
        # A crashed worker's sticky queue would hold the batch ~10 s by default.
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=3),
    )
