"""One error format for every failure: `{"error": {"code", "message"}}`, never a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from observability.middleware import route_of
from recipes.errors import RecipeError
from runtime.equipment import EquipmentError
from runtime.temporal_client import TemporalConfigError, TemporalUnreachable
from signatures.identity import (
    AccountLocked,
    AuthenticationFailed,
    IdentityError,
    NotPermitted,
    PasswordChangeRequired,
    UserIdRequired,
)
from signatures.tokens import TokenError
from store.batch_record import BatchConflict, RecordError
from store.recipes import RecipeStoreError

log = logging.getLogger("ebr.api")


def _count_authentication_failure(request: Request) -> None:
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.authentication_failed(route_of(request.scope))

# ApplicationError types raised by workflow validators, as HTTP statuses.
UPDATE_STATUS = {
    "NotPermitted": 403,
    "BadValue": 422,
    "Missing": 422,
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message}})


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return error_response(422, "invalid_request", "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, "http_error", str(exc.detail))

    @app.exception_handler(TemporalUnreachable)
    @app.exception_handler(TemporalConfigError)
    async def _engine(_: Request, exc: Exception) -> JSONResponse:
        return error_response(503, "engine_unavailable", str(exc))

    @app.exception_handler(RecipeError)
    async def _recipe(_: Request, exc: RecipeError) -> JSONResponse:
        return error_response(422, "invalid_recipe", "; ".join(str(p) for p in exc.problems))

    @app.exception_handler(AccountLocked)
    async def _locked(request: Request, exc: AccountLocked) -> JSONResponse:
        _count_authentication_failure(request)
        return error_response(423, "account_locked", str(exc))

    @app.exception_handler(PasswordChangeRequired)
    async def _change_password(_: Request, exc: PasswordChangeRequired) -> JSONResponse:
        return error_response(403, "password_change_required", str(exc))

    @app.exception_handler(AuthenticationFailed)
    async def _auth(request: Request, exc: AuthenticationFailed) -> JSONResponse:
        _count_authentication_failure(request)
        return error_response(401, "authentication_failed", str(exc))

    @app.exception_handler(TokenError)
    async def _token(_: Request, exc: TokenError) -> JSONResponse:
        return error_response(401, "not_authenticated", str(exc))

    @app.exception_handler(NotPermitted)
    async def _forbidden(_: Request, exc: NotPermitted) -> JSONResponse:
        return error_response(403, "not_permitted", str(exc))

    @app.exception_handler(UserIdRequired)
    async def _user_id(_: Request, exc: UserIdRequired) -> JSONResponse:
        return error_response(422, "user_id_required", str(exc))

    @app.exception_handler(IdentityError)
    async def _identity(_: Request, exc: IdentityError) -> JSONResponse:
        return error_response(400, "identity_error", str(exc))

    @app.exception_handler(EquipmentError)
    async def _equipment(_: Request, exc: EquipmentError) -> JSONResponse:
        return error_response(409, "equipment_unavailable", str(exc))

    @app.exception_handler(BatchConflict)
    async def _conflict(_: Request, exc: BatchConflict) -> JSONResponse:
        return error_response(409, "conflict", str(exc))

    @app.exception_handler(RecipeStoreError)
    async def _recipe_store(_: Request, exc: RecipeStoreError) -> JSONResponse:
        return error_response(409, "recipe_refused", str(exc))

    @app.exception_handler(RecordError)
    async def _record(_: Request, exc: RecordError) -> JSONResponse:
        return error_response(409, "record_refused", str(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(
            500,
            "internal_error",
            "ebr could not complete the request; check the batch state before retrying. "
            "If it persists, tell your administrator the time of this error.",
        )
