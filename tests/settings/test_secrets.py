"""Secrets: generated once for development, never generated or defaulted in production."""

from __future__ import annotations

import stat

import pytest

from settings.secrets import SecretsError, load_or_create_secrets


def test_development_generates_private_secrets_once(tmp_path):
    path = tmp_path / "secrets.json"
    first = load_or_create_secrets(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secrets(path) == first
    assert len(first.jwt_secret) >= 43


def test_production_refuses_to_generate(tmp_path, monkeypatch):
    monkeypatch.delenv("EBR_JWT_SECRET", raising=False)
    with pytest.raises(SecretsError, match="never generates"):
        load_or_create_secrets(tmp_path / "secrets.json", production=True)


def test_production_refuses_known_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("EBR_JWT_SECRET", "changeme")
    monkeypatch.setenv("EBR_SIGNING_PASSPHRASE", "a-real-passphrase-from-vault")
    with pytest.raises(SecretsError, match="published default"):
        load_or_create_secrets(tmp_path / "secrets.json", production=True)


def test_production_accepts_strong_secrets_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("EBR_JWT_SECRET", "s" * 64)
    monkeypatch.setenv("EBR_SIGNING_PASSPHRASE", "a-real-passphrase-from-vault")
    assert load_or_create_secrets(tmp_path / "secrets.json", production=True).jwt_secret
    assert not (tmp_path / "secrets.json").exists()
