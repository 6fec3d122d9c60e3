"""The API app in process with a real worker on a real local Temporal server: the demo
site's users, recipes and inventory, fake instruments, and the built-in WMS and QMS."""

from __future__ import annotations

import concurrent.futures
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from activities.devices import DeviceActivities
from activities.qms import QmsActivities
from activities.records import RecordActivities
from activities.wms import WmsActivities
from api.app import build_services, create_app
from api.services import Services
from devices.modbus_plc import PlcSettings
from devices.mtsics import ScaleSettings
from qms.builtin import BuiltinQms
from runtime.equipment import EquipmentRegister
from runtime.seed import seed_demo
from runtime.worker import ACTIVITY_THREADS, build_worker
from settings.config import Settings
from tests.workflows.fakes import FakeMixer, FakeReports, FakeScale, opener
from wms.builtin import BuiltinWms


@dataclass
class AppRig:
    http: httpx.AsyncClient
    services: Services
    task_queue: str
    scale: FakeScale


@asynccontextmanager
async def app_with_worker(
    temporal_env: WorkflowEnvironment, var_dir: Path, name: str
) -> AsyncIterator[AppRig]:
    queue = f"{name}-{uuid.uuid4().hex[:8]}"
    settings = Settings(var_dir=var_dir, env="test", task_queue=queue, _env_file=None)
    svc = build_services(settings)
    svc.register = EquipmentRegister(
        scales={"SCALE-01": ScaleSettings(url="unused")},
        mixers={"MIXER-01": PlcSettings(host="unused")},
    )
    svc._client = temporal_env.client
    seed_demo(svc.engine)
    scale = FakeScale()
    wms = BuiltinWms(svc.engine)
    activities = [
        RecordActivities(svc.records),
        DeviceActivities(open_scale=opener(scale), open_mixer=opener(FakeMixer())),
        WmsActivities(wms),
        QmsActivities(BuiltinQms(svc.engine, wms)),
        FakeReports(),
    ]
    transport = httpx.ASGITransport(app=create_app(settings, svc))
    with concurrent.futures.ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with (
            build_worker(temporal_env.client, queue, activities, executor),
            httpx.AsyncClient(transport=transport, base_url="http://test") as http,
        ):
            yield AppRig(http, svc, queue, scale)
