"""Which WMS and QMS a process talks to, from the settings: the HTTP adapter when
`EBR_WMS_URL` / `EBR_QMS_URL` is set, ebr's built-in one otherwise.

Shared by both composition roots (`runtime/worker_main.py`, `api/app.py`), so the
worker's activities and the API's routes always reach the same systems. An external
system's adapter is wrapped in `store.external_journal`, which journals what it
confirmed for a batch into the audit trail, so the eBMR lists those materials and
deviations without asking that system again.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from qms.builtin import BuiltinQms
from qms.http_adapter import HttpQms
from qms.port import QmsPort
from settings.config import Settings
from store.external_journal import JournaledQms, JournaledWms
from wms.builtin import BuiltinWms
from wms.http_adapter import HttpWms
from wms.port import WmsPort


def build_wms(settings: Settings, engine: Engine) -> WmsPort:
    if settings.wms_url:
        http = HttpWms(settings.wms_url, timeout_s=settings.wms_timeout_s)
        return JournaledWms(http, engine, settings.wms_url)
    return BuiltinWms(engine)


def build_qms(settings: Settings, engine: Engine, wms: WmsPort) -> QmsPort:
    # The built-in QMS holds and releases lots through whichever WMS is wired.
    if settings.qms_url:
        http = HttpQms(settings.qms_url, timeout_s=settings.qms_timeout_s)
        return JournaledQms(http, engine, settings.qms_url)
    return BuiltinQms(engine, wms)
