"""The FastAPI application: JSON API under /api/v1 and server-rendered pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from api import (
    errors,
    pages,
    pages_common,
    routes_audit,
    routes_auth,
    routes_batches,
    routes_erp,
    routes_qms,
    routes_recipes,
    routes_reports,
    routes_users,
    routes_wms,
)
from api.body_guard import BodyGuard
from api.services import Services
from observability.health import readiness
from observability.metrics import CONTENT_TYPE, ApiMetrics
from observability.middleware import RequestContextMiddleware
from runtime.equipment import load_register
from settings.config import Settings
from signatures.identity import IdentityPolicy, UserDirectory
from store.batch_record import BatchRecordStore
from store.db import make_engine
from store.migrate import prepare
from store.recipes import RecipeStore
from wms.wiring import build_qms, build_wms

STATIC = Path(__file__).parent / "static"


def build_services(settings: Settings) -> Services:
    engine = make_engine(settings.resolved_database_url)
    prepare(engine, settings.auto_upgrade_schema)
    wms = build_wms(settings, engine)
    return Services(
        settings=settings,
        engine=engine,
        users=UserDirectory(engine, IdentityPolicy.from_settings(settings)),
        recipes=RecipeStore(engine),
        records=BatchRecordStore(
            engine, site_name=settings.site_name, site_timezone=settings.site_timezone,
            external_wms_url=settings.wms_url or "", external_qms_url=settings.qms_url or "",
        ),
        register=load_register(settings),
        wms=wms,
        qms=build_qms(settings, engine, wms),
    )


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    svc = services or build_services(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = svc
        yield
        for port in (svc.wms, svc.qms):  # HTTP adapters hold a connection pool
            close = getattr(port, "close", None)
            if close is not None:
                close()
        svc.engine.dispose()

    app = FastAPI(
        title="ebr",
        version="0.1.0",
        summary="Electronic batch records on a durable workflow engine",
        lifespan=lifespan,
    )
    app.state.services = svc
    app.state.metrics = metrics = ApiMetrics(svc.engine)
    app.add_middleware(BodyGuard)
    # Added last, so outermost: even a refused body gets a request id and is measured.
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    errors.install(app)
    pages_common.install(app)
    app.include_router(routes_auth.router)
    app.include_router(routes_recipes.router)
    app.include_router(routes_batches.router)
    app.include_router(routes_audit.router)
    app.include_router(routes_users.router)
    app.include_router(routes_reports.router)
    app.include_router(routes_wms.router)
    app.include_router(routes_qms.router)
    app.include_router(routes_erp.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        """Readiness: the record store and Temporal answer within 2 s each."""
        result = await readiness(svc.engine, svc.ping_temporal)
        status = 200 if result.ready else 503
        body = {"status": "ready" if result.ready else "not ready", "checks": result.checks}
        return JSONResponse(body, status_code=status)

    if settings.metrics_enabled:

        @app.get("/metrics", tags=["health"], include_in_schema=False)
        def prometheus_metrics() -> Response:
            """Prometheus exposition; no batch data beyond counts (docs/operations.md)."""
            return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    return app
