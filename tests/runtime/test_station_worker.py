"""A weighing station's PC hosts its scale's activities: `ebr worker --station booth-1`
in its own process serves a real MT-SICS reading for a batch, while the main worker
(workflows and every other activity) has no access to that scale."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from temporalio.testing import WorkflowEnvironment

from activities.devices import DeviceActivities
from activities.records import RecordActivities
from devices.errors import DeviceConnectionError
from devices.register import parse_register
from devices.scale_sim import ScaleSimulator
from runtime.equipment import EquipmentRegister, load_register
from runtime.processes import ebr_command
from runtime.worker import ACTIVITY_THREADS, build_device_worker, build_worker
from settings.config import Settings
from store.batch_record import BatchRecordStore
from tests.api.test_api import Api
from tests.app_rig import app_with_worker
from tests.sample_plan import PLAN
from tests.workflows.fakes import FakeMixer, FakeReports, FakeScale, opener
from tests.workflows.rig import OPERATOR
from workflows.batch import BatchWorkflow
from workflows.messages import BatchInput, CaptureWeightRequest

REPO = Path(__file__).resolve().parents[2]
WAIT_S = 120.0  # a loaded machine takes long to start the station process

SITE = """\
ebr_equipment: 1
equipment:
  SCALE-01:
    class: scale
    driver: mt-sics
    connection: {url: "%(url)s", timeout_s: 1.0}
    serial_number: B123456789
    capacity: 6000
    resolution: 0.01
    unit: g
    calibration_due: 2099-12-31
    cleaning: {status: clean, cleaned_at: 2026-01-01T00:00:00Z}
    station: booth-1
  MIXER-01:
    class: mixer
    driver: modbus-tcp
    connection: {host: 127.0.0.1, port: 1}
    tag_map: mixer
    cleaning: {status: clean, cleaned_at: 2026-01-01T00:00:00Z}
"""


@pytest.fixture
def scale_sim() -> Iterator[ScaleSimulator]:
    sim = ScaleSimulator()
    yield sim
    sim.close()


@pytest.fixture
def site(tmp_path: Path, scale_sim: ScaleSimulator) -> Settings:
    """The site register, shared by the API side and the station (same file)."""
    url = f"socket://127.0.0.1:{scale_sim.serve_tcp()}"
    (tmp_path / "equipment.yaml").write_text(SITE % {"url": url})
    return Settings(var_dir=tmp_path)


@contextmanager
def station_worker(site: Settings, env: WorkflowEnvironment) -> Iterator[subprocess.Popen[bytes]]:
    log = open(site.var_dir / "station.log", "wb")  # noqa: SIM115 - closed below
    environ = os.environ | {
        "EBR_VAR_DIR": str(site.var_dir),
        "EBR_TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "EBR_TEMPORAL_NAMESPACE": env.client.namespace,
    }
    process = subprocess.Popen(ebr_command("worker", "--station", "booth-1"), cwd=REPO,
                               env=environ, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


class NoScaleHere:
    """The main worker's scale opener: this PC has no scale; any call is recorded."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, equipment_id: str) -> object:
        self.asked.append(equipment_id)
        raise DeviceConnectionError(f"{equipment_id} is not attached to the main worker's PC")


@pytest.fixture
async def main_worker(
    temporal_env: WorkflowEnvironment, engine: Engine
) -> AsyncIterator[tuple[str, NoScaleHere]]:
    no_scale = NoScaleHere()
    activities = [
        RecordActivities(BatchRecordStore(engine)),
        DeviceActivities(open_scale=no_scale, open_mixer=opener(FakeMixer())),  # type: ignore[arg-type]
        FakeReports(),
    ]
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    with concurrent.futures.ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with build_worker(temporal_env.client, queue, activities, executor):
            yield queue, no_scale


async def test_the_station_worker_serves_the_weighing_of_its_scale(
    temporal_env: WorkflowEnvironment,
    engine: Engine,
    site: Settings,
    scale_sim: ScaleSimulator,
    main_worker: tuple[str, NoScaleHere],
) -> None:
    queue, no_scale = main_worker
    register = load_register(site)
    equipment = {"scale": "SCALE-01", "mixer": "MIXER-01"}
    task_queues = register.task_queues(equipment)
    assert task_queues == {"SCALE-01": "ebr-station-booth-1"}
    batch_id = f"B-{uuid.uuid4().hex[:8]}"
    BatchRecordStore(engine).create_batch(batch_id, PLAN, equipment, "sup")
    scale_sim.set_weight("1201.37")

    with station_worker(site, temporal_env) as process:
        handle = await temporal_env.client.start_workflow(
            BatchWorkflow.run,
            BatchInput(batch_id, PLAN, equipment, "sup", task_queues=task_queues),
            id=batch_id,
            task_queue=queue,
        )
        try:
            reading = await asyncio.wait_for(
                handle.execute_update(BatchWorkflow.capture_weight,
                                      CaptureWeightRequest("d/w/weigh-a", OPERATOR)),
                WAIT_S,
            )
        finally:
            await handle.terminate("test over")
        assert process.poll() is None, (site.var_dir / "station.log").read_text()

    assert (reading.device_value, reading.device_unit) == ("1201.37", "g")
    assert reading.raw_frames == ["S S    1201.37 g"]
    assert reading.device_serial == "B123456789"
    assert Decimal(reading.value) == Decimal("1201.37")
    assert no_scale.asked == []


async def test_a_batch_started_over_the_api_weighs_on_the_stations_worker(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """The API puts the register's task queues into the batch; the weighing then runs on
    the station's queue (an in-process station worker here), not on the main worker."""
    async with app_with_worker(temporal_env, tmp_path, "station") as rig:
        api = Api(rig.http, rig.scale)
        site = SITE % {"url": "socket://127.0.0.1:1"}
        rig.services.register = EquipmentRegister(register=parse_register(site))
        station_scale = FakeScale()
        station_scale.grams = Decimal("1203.25")
        rig.scale.grams = Decimal("9999.99")  # the main worker's scale must not be read
        station = [DeviceActivities(open_scale=opener(station_scale),
                                    open_mixer=opener(FakeMixer()))]
        with concurrent.futures.ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
            async with build_device_worker(temporal_env.client, "ebr-station-booth-1", station,
                                           executor):
                await api.approve_example()
                batch = await api.start_batch("B-STATION")
                op = await api.login("operator")
                weighed = await asyncio.wait_for(
                    rig.http.post(f"/api/v1/batches/B-STATION/steps/{batch['steps'][0]}/weigh",
                                  headers=op),
                    WAIT_S,
                )

    assert weighed.status_code == 200, weighed.text
    assert Decimal(weighed.json()["value"]) == Decimal("1203.25")
