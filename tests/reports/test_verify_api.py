"""POST /api/v1/reports/verify: an uploaded eBMR checked against its signature and the database."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from api.app import build_services, create_app
from api.services import Services
from reports.pki import ensure_signing_identity
from reports.publish import sha256_hex
from reports.render import render_batch_record
from reports.sign import sign_pdf
from runtime.seed import demo_user, seed_demo
from settings.config import Settings
from tests.sample_plan import PLAN

BATCH = "B-VERIFY-1"
URL = "/api/v1/reports/verify"


@dataclass
class Client:
    http: httpx.AsyncClient
    svc: Services

    async def login(self, role: str) -> dict[str, str]:
        user = demo_user(role)
        r = await self.http.post(
            "/api/v1/auth/login", json={"username": user.username, "password": user.password}
        )
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    async def upload(self, pdf: bytes, role: str = "auditor") -> httpx.Response:
        return await self.http.post(
            URL,
            files={"file": ("record.pdf", pdf, "application/pdf")},
            headers=await self.login(role),
        )

    async def signed_pdf(self, mutate=None) -> bytes:  # type: ignore[no-untyped-def]
        # Rendering and signing are blocking: off the event loop, as in the worker.
        return await asyncio.to_thread(self._signed_pdf, mutate)

    def _signed_pdf(self, mutate=None) -> bytes:  # type: ignore[no-untyped-def]
        """Render and sign the batch's record as the report activity would."""
        record = self.svc.records.assemble_record(BATCH)
        if mutate is not None:
            record = copy.deepcopy(record)
            mutate(record)
        pki = self.svc.settings.pki_dir
        passphrase = self.svc.settings.secrets.signing_passphrase.encode()
        identity = ensure_signing_identity(pki, passphrase)
        return sign_pdf(render_batch_record(record, "recipe: test\n").pdf, identity)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    settings = Settings(var_dir=tmp_path, env="test", _env_file=None)
    svc = build_services(settings)
    seed_demo(svc.engine)
    svc.records.create_batch(BATCH, PLAN, {"scale": "SCALE-01", "mixer": "MIXER-01"}, "supervisor")
    app = create_app(settings, svc)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        yield Client(http, svc)


async def test_genuine_record_verifies_and_matches_the_database(client: Client) -> None:
    pdf = await client.signed_pdf()
    client.svc.records.attach_report(BATCH, "/unused.pdf", sha256_hex(pdf), 3)

    r = await client.upload(pdf)

    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True and body["problems"] == []
    assert body["batch_id"] == BATCH and body["batch_in_database"] is True
    assert body["record_matches_database"] is True
    assert body["record_differences"] == []
    assert body["published_copy"] is True
    assert body["audit_chain_intact"] is True
    # attach_report audited the publication after the record was assembled.
    assert body["audit_entries_after_signing"] == 1


async def test_qa_may_verify_too(client: Client) -> None:
    r = await client.upload(await client.signed_pdf(), role="qa")
    assert r.status_code == 200
    assert r.json()["published_copy"] is False  # never attached: not the published file


async def test_operator_may_not_verify(client: Client) -> None:
    r = await client.upload(await client.signed_pdf(), role="operator")
    assert r.status_code == 403


async def test_signed_record_that_differs_from_the_database_is_reported(client: Client) -> None:
    def forge(record: dict) -> None:
        record["batch"]["batch_size"] = "200"

    r = await client.upload(await client.signed_pdf(forge))

    body = r.json()
    assert body["ok"] is True  # correctly signed ...
    assert body["record_matches_database"] is False  # ... but not what ebr recorded
    assert body["record_differences"] == ["batch.batch_size: signed '200', database '2'"]


async def test_changed_byte_is_invalid_and_not_compared(client: Client) -> None:
    pdf = bytearray(await client.signed_pdf())
    pdf[len(pdf) // 3] ^= 0x01

    body = (await client.upload(bytes(pdf))).json()

    assert body["ok"] is False and body["problems"]
    assert body["record_matches_database"] is None
    assert body["batch_in_database"] is False  # nothing trustworthy names the batch


async def test_record_of_an_unknown_batch_is_verified_without_comparison(client: Client) -> None:
    def elsewhere(record: dict) -> None:
        record["batch"]["batch_id"] = "B-OTHER-SITE"

    body = (await client.upload(await client.signed_pdf(elsewhere))).json()

    assert body["ok"] is True
    assert body["batch_in_database"] is False
    assert body["record_matches_database"] is None


async def test_not_a_pdf_is_422(client: Client) -> None:
    r = await client.upload(b"hello, I am not a PDF")
    assert r.status_code == 422
    assert "not a PDF" in r.json()["error"]["message"]


async def test_unauthenticated_upload_is_401(client: Client) -> None:
    r = await client.http.post(URL, files={"file": ("x.pdf", b"%PDF-1.7", "application/pdf")})
    assert r.status_code == 401
