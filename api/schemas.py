"""Request and response bodies. Requests forbid unknown fields, so a typo is an error."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginRequest(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    full_name: str
    roles: list[str]


class SignRequest(Strict):
    password: str = Field(min_length=1, max_length=256, description="re-entered to sign")
    username: str | None = Field(
        default=None, max_length=64,
        description="your user id: required for the first signature of a session",
    )


class RecipeApproveRequest(SignRequest):
    pass


class RecipeUpload(Strict):
    yaml: str = Field(min_length=1, max_length=1_048_576)
    filename: str = "upload.yaml"


class RecipeSummary(BaseModel):
    recipe_id: str
    version: str
    name: str
    product_code: str
    sha256: str
    status: str
    approved_by: str | None


class RecipeReason(Strict):
    reason: str = Field(min_length=1, max_length=2000, description="why, for the audit trail")


class RecipeHistoryEntry(BaseModel):
    at: str
    actor: str
    action: str
    detail: dict[str, str]


class RecipeDetail(RecipeSummary):
    created_by: str
    created_at: str
    approved_at: str | None
    yaml: str = Field(description="the exact stored text; its SHA-256 is `sha256`")
    history: list[RecipeHistoryEntry]


class RecipeChange(BaseModel):
    kind: Literal["added", "removed", "moved", "changed"]
    subject: str
    detail: str


class RecipeDiff(BaseModel):
    recipe_id: str
    base: str
    other: str
    changes: list[RecipeChange]


class RecipeCompileRequest(Strict):
    batch_size: Decimal | None = Field(default=None, gt=0, description="default: nominal")


class RecipeCompiled(BaseModel):
    plan: dict[str, Any] = Field(description="the BatchPlan, as `ebr recipe compile` prints it")
    plan_sha256: str = Field(description="SHA-256 of the plan's canonical JSON")


class BatchCreate(Strict):
    batch_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    recipe_id: str
    version: str
    batch_size: Decimal | None = Field(default=None, gt=0, description="default: nominal")
    area: str | None = Field(
        default=None, max_length=64,
        description="area (line, room) the batch runs in; default: the bound equipment's "
        "area, else EBR_DEFAULT_AREA",
    )


class StepComplete(SignRequest):
    value: StrictBool | StrictInt | Annotated[str, Field(max_length=2000)] | None = Field(
        default=None,
        description="entry steps: a number or text as typed, yes/no or true/false for a "
        "boolean entry",
    )
    comment: str = Field(default="", max_length=2000)


class ScanBody(Strict):
    barcode: str = Field(min_length=1, max_length=512,
                         description="the GS1 element string as scanned, or the (01)…(10)… text")


class HoldRequestBody(SignRequest):
    reason: str = Field(min_length=1, max_length=2000)


class Release(SignRequest):
    decision: Literal["released", "rejected"]
    reason: str = Field(default="", max_length=2000)


class Correction(SignRequest):
    value: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=2000)


class Disposition(SignRequest):
    disposition: Literal["accept", "reject", "rework"]
    rationale: str = Field(min_length=1, max_length=2000)
    capa_ref: str = Field(default="", max_length=64)


class StateChange(SignRequest):
    reason: str = Field(min_length=1, max_length=2000)


class Comment(Strict):
    text: str = Field(min_length=1, max_length=2000)


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody
