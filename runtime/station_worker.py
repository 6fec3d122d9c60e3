"""`ebr worker --station NAME`: a weighing station's PC hosting its own devices.

Polls task queue `ebr-station-NAME` with only the device activities, for only the
equipment the register places at that station (`station: NAME`). No workflows, no
database, no reports: the station needs the Temporal address and the register, nothing
else, and starts quickly because it imports none of the rest.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import signal
import sys

from activities.devices import DeviceActivities
from devices.register import station_task_queue
from observability.logs import configure_logging
from observability.temporal import configure_tracing
from runtime.equipment import load_register
from runtime.temporal_client import TemporalConfigError, TemporalUnreachable, connect_options
from runtime.worker import ACTIVITY_THREADS, build_device_worker, connect_client
from settings.config import Settings

log = logging.getLogger("ebr.station")


def station_activities(settings: Settings, station: str) -> list[object]:
    """The device activities, with the site register narrowed to `station` (StationError
    when no entry is there): an activity for other equipment is refused."""
    register = load_register(settings).for_station(station)
    return [
        DeviceActivities(
            open_scale=register.open_scale, open_mixer=register.open_mixer, register=register,
            open_plc=register.open_plc,
        )
    ]


async def _run(settings: Settings, station: str) -> None:
    activities = station_activities(settings, station)
    task_queue = station_task_queue(station)
    client = await connect_client(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with concurrent.futures.ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with build_device_worker(client, task_queue, activities, executor):
            log.warning("station worker polling %s on %s", task_queue,
                        connect_options(settings).describe())
            await stop.wait()


def run_station_worker(settings: Settings, station: str) -> int:
    """Run until SIGINT/SIGTERM."""
    configure_logging(json_logs=settings.log_format == "json", level=settings.log_level)
    if settings.otel_enabled:
        configure_tracing("ebr-station")
    try:
        asyncio.run(_run(settings, station))
    except (TemporalConfigError, TemporalUnreachable) as exc:
        print(f"ebr worker --station {station}: {exc}", file=sys.stderr)
        return 1
    return 0
