"""What the API talks to, built once per process in `create_app` and shared by routes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from temporalio.client import Client

from runtime.equipment import EquipmentRegister
from settings.config import Settings
from signatures.identity import UserDirectory
from store.batch_record import BatchRecordStore
from store.recipes import RecipeStore


@dataclass
class Services:
    settings: Settings
    engine: Engine
    users: UserDirectory
    recipes: RecipeStore
    records: BatchRecordStore
    register: EquipmentRegister
    _client: Client | None = None
    _client_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def temporal(self) -> Client:
        """Connect on first use, so the API starts (and serves health) before Temporal."""
        async with self._client_lock:
            if self._client is None:
                self._client = await Client.connect(
                    self.settings.temporal_target, namespace=self.settings.temporal_namespace
                )
            return self._client
