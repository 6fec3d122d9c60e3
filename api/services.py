"""What the API talks to, built once per process in `create_app` and shared by routes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from temporalio.client import Client

from qms.port import QmsPort
from runtime.equipment import EquipmentRegister
from runtime.temporal_client import connect
from settings.config import Settings
from signatures.identity import UserDirectory
from store.batch_record import BatchRecordStore
from store.recipes import RecipeStore
from wms.port import WmsPort


@dataclass
class Services:
    settings: Settings
    engine: Engine
    users: UserDirectory
    recipes: RecipeStore
    records: BatchRecordStore
    register: EquipmentRegister
    # The WMS/QMS the routes use (built-in or HTTP adapter); None = built-in on `engine`.
    wms: WmsPort | None = None
    qms: QmsPort | None = None
    _client: Client | None = None
    _client_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def temporal(self) -> Client:
        """Connect on first use, so the API starts (and serves health) before Temporal."""
        async with self._client_lock:
            if self._client is None:
                self._client = await connect(self.settings)
            return self._client

    async def ping_temporal(self) -> None:
        client = await self.temporal()
        await client.service_client.check_health()
