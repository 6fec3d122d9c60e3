"""The `rig` fixture: a worker with fake instruments on its own task queue."""

from __future__ import annotations

import concurrent.futures
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.devices import DeviceActivities
from activities.labels import LabelActivities
from activities.qms import QmsActivities
from activities.records import RecordActivities
from activities.wms import WmsActivities
from qms.builtin import BuiltinQms
from qms.port import QmsPort
from runtime.worker import ACTIVITY_THREADS, build_worker
from store.batch_record import BatchRecordStore
from tests.workflows.fakes import FakeMixer, FakePlc, FakeReports, FakeScale, opener
from tests.workflows.rig import Rig
from wms.builtin import BuiltinWms
from wms.port import WmsPort
from wms.seed import seed_inventory


@pytest.fixture
async def rig(temporal_env: WorkflowEnvironment, engine, tmp_path) -> AsyncIterator[Rig]:  # type: ignore[no-untyped-def]
    async with _rig(temporal_env, engine, tmp_path) as made:
        yield made


@pytest.fixture
async def timeskip_rig(engine, tmp_path) -> AsyncIterator[Rig]:  # type: ignore[no-untyped-def]
    """The same rig on Temporal's time-skipping test server: hours of hold time in seconds."""
    binary = Path(sys.executable).parent / "temporal-test-server"
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(binary))
    try:
        async with _rig(env, engine, tmp_path) as made:
            yield made
    finally:
        await env.shutdown()


@asynccontextmanager
async def _rig(env: WorkflowEnvironment, engine, tmp_path: Path,  # type: ignore[no-untyped-def]
               *, store: BatchRecordStore | None = None, wms: WmsPort | None = None,
               qms: QmsPort | None = None) -> AsyncIterator[Rig]:
    """`store`, `wms`, `qms`: the record store and the ports to wire (e.g. external
    systems); by default the built-ins on the test's own database."""
    temporal_env = env
    store = store or BatchRecordStore(engine)
    scale, mixer, reports = FakeScale(), FakeMixer(), FakeReports()
    plc = FakePlc(tags={"temperature_setpoint_c": Decimal("20.0"),
                        "temperature_c": Decimal("71.8")})
    labels = LabelActivities(tmp_path / "labels")
    # The built-in WMS and QMS on the test's own database, stocked like the demo site.
    if wms is None:
        seed_inventory(engine)
        wms = BuiltinWms(engine)
    activities = [
        RecordActivities(store),
        DeviceActivities(open_scale=opener(scale), open_mixer=opener(mixer),
                         open_plc=opener(plc)),
        labels,
        WmsActivities(wms),
        QmsActivities(qms or BuiltinQms(engine, wms)),
        reports,
    ]
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    with concurrent.futures.ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with build_worker(temporal_env.client, queue, activities, executor):
            yield Rig(temporal_env, store, scale, mixer, reports, queue, plc, labels)


