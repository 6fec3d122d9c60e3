"""The `rig` fixture: a worker with fake instruments on its own task queue."""

from __future__ import annotations

import concurrent.futures
import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.devices import DeviceActivities
from activities.records import RecordActivities
from runtime.worker import ACTIVITY_THREADS, build_worker
from store.batch_record import BatchRecordStore
from tests.workflows.fakes import FakeMixer, FakeReports, FakeScale, opener
from tests.workflows.rig import Rig


@pytest.fixture
async def rig(temporal_env: WorkflowEnvironment, engine) -> AsyncIterator[Rig]:  # type: ignore[no-untyped-def]
    store = BatchRecordStore(engine)
    scale, mixer, reports = FakeScale(), FakeMixer(), FakeReports()
    activities = [
        RecordActivities(store),
        DeviceActivities(open_scale=opener(scale), open_mixer=opener(mixer)),
        reports,
    ]
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    with concurrent.futures.ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with build_worker(temporal_env.client, queue, activities, executor):
            yield Rig(temporal_env, store, scale, mixer, reports, queue)


