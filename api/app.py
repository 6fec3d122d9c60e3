"""The FastAPI application: JSON API under /api/v1 and server-rendered pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api import (
    errors,
    pages,
    routes_audit,
    routes_auth,
    routes_batches,
    routes_qms,
    routes_recipes,
    routes_reports,
    routes_users,
    routes_wms,
)
from api.services import Services
from runtime.equipment import load_register
from settings.config import Settings
from signatures.identity import IdentityPolicy, UserDirectory
from store.batch_record import BatchRecordStore
from store.db import create_schema, make_engine
from store.recipes import RecipeStore

STATIC = Path(__file__).parent / "static"


def build_services(settings: Settings) -> Services:
    engine = make_engine(settings.resolved_database_url)
    create_schema(engine)
    return Services(
        settings=settings,
        engine=engine,
        users=UserDirectory(engine, IdentityPolicy.from_settings(settings)),
        recipes=RecipeStore(engine),
        records=BatchRecordStore(engine),
        register=load_register(settings),
    )


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    svc = services or build_services(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = svc
        yield
        svc.engine.dispose()

    app = FastAPI(
        title="ebr",
        version="0.1.0",
        summary="Electronic batch records on a durable workflow engine",
        lifespan=lifespan,
    )
    app.state.services = svc
    errors.install(app)
    app.include_router(routes_auth.router)
    app.include_router(routes_recipes.router)
    app.include_router(routes_batches.router)
    app.include_router(routes_audit.router)
    app.include_router(routes_users.router)
    app.include_router(routes_reports.router)
    app.include_router(routes_wms.router)
    app.include_router(routes_qms.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
