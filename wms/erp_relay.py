"""`ebr erp relay`: the ERP outbox relay, its own small process (`ebr up` starts it when
EBR_ERP_URL is set).

Every round queues the confirmation of each process order whose batch has ended
(`confirm_finished`) and delivers the due outbox messages (`deliver_pending`, with
backoff). A failing round (database busy, WMS or ERP down) is logged and retried next
round; nothing is lost, because both steps are idempotent on the batch's key.
On PostgreSQL a round runs under a session advisory lock, so a second relay on the same
database (a standby) skips its rounds instead of sending the same message at once.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from sqlalchemy import text
from sqlalchemy.engine import Engine

from observability.logs import configure_logging
from settings.config import Settings
from store.db import create_schema, make_engine
from wms.erp import Delivery, confirm_finished, deliver_pending
from wms.port import WmsPort
from wms.wiring import build_wms

log = logging.getLogger("ebr.erp")
RELAY_LOCK = 7354012  # PostgreSQL advisory lock key of the relay (migrations use ...011)
IDLE = Delivery(delivered=0, pending=0, failed=0)


@contextmanager
def exclusive(engine: Engine) -> Iterator[bool]:
    """True when this process may run a round now (always, on SQLite)."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    with engine.connect() as conn:
        got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                {"k": RELAY_LOCK}).scalar())
        try:
            yield got
        finally:
            if got:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": RELAY_LOCK})
            conn.rollback()


def relay_round(settings: Settings, engine: Engine, wms: WmsPort) -> Delivery:
    assert settings.erp_url, "the relay needs EBR_ERP_URL"
    with exclusive(engine) as mine:
        if not mine:
            log.debug("another relay holds the round; skipping")
            return IDLE
        return _round(settings, engine, wms)


def _round(settings: Settings, engine: Engine, wms: WmsPort) -> Delivery:
    queued = confirm_finished(engine, wms)
    if queued:
        log.info("queued %d confirmation(s)", queued)
    result = deliver_pending(engine, settings.erp_url, timeout_s=settings.erp_timeout_s,
                             backoff_max_s=settings.erp_backoff_max_s)
    if result.delivered or result.failed:
        log.info("delivered %d, refused %d, pending %d", result.delivered, result.failed,
                 result.pending)
    return result


def run_relay(settings: Settings, stop: threading.Event, engine: Engine | None = None) -> None:
    """Rounds every EBR_ERP_POLL_S until `stop` is set."""
    own = engine is None
    engine = engine or make_engine(settings.resolved_database_url)
    create_schema(engine)
    wms = build_wms(settings, engine)
    try:
        while not stop.is_set():
            try:
                relay_round(settings, engine, wms)
            except Exception:  # a bad round must not end the relay
                log.exception("ERP relay round failed; retrying in %.1f s", settings.erp_poll_s)
            stop.wait(settings.erp_poll_s)
    finally:
        if own:
            engine.dispose()


def run_relay_process(settings: Settings) -> int:
    if not settings.erp_url:
        log.error("EBR_ERP_URL is not set: there is nowhere to deliver confirmations.")
        return 2
    configure_logging(json_logs=settings.log_format == "json", level=settings.log_level)
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    log.warning("ERP relay delivering to %s every %.1f s", settings.erp_url,
                settings.erp_poll_s)
    run_relay(settings, stop)
    return 0
