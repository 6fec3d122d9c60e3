"""publish_report: never an unsigned PDF; a broken key leaves the signature pending, not lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.reports import SIGNATURE_PENDING, SIGNING_UNAVAILABLE, ReportActivities
from reports.pki import SigningIdentity, ensure_signing_identity
from reports.verify import verify_pdf
from store.batch_record import BatchRecordStore
from store.models import AuditEvent
from store.recipes import RecipeStore
from tests.sample_plan import PLAN
from workflows.messages import ReportInput

BATCH = "B-REPORT-1"


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> SigningIdentity:
    return ensure_signing_identity(tmp_path_factory.mktemp("pki"), b"right")


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> SigningIdentity:
    return ensure_signing_identity(tmp_path_factory.mktemp("other-pki"), b"other")


@pytest.fixture
def store(engine: Engine) -> BatchRecordStore:
    records = BatchRecordStore(engine)
    records.create_batch(BATCH, PLAN, {"scale": "SCALE-01", "mixer": "MIXER-01"}, "supervisor")
    return records


def _activities(
    store: BatchRecordStore, engine: Engine, reports: Path, identity: object
) -> ReportActivities:
    return ReportActivities(store, RecipeStore(engine), reports, identity)  # type: ignore[arg-type]


def _publish(activities: ReportActivities):  # type: ignore[no-untyped-def]
    return ActivityEnvironment().run(activities.publish_report, ReportInput(batch_id=BATCH))


def _pending_entries(engine: Engine) -> list[AuditEvent]:
    with Session(engine) as session:
        query = select(AuditEvent).where(AuditEvent.action == SIGNATURE_PENDING)
        return list(session.exec(query))


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param(
            lambda good, tmp: SigningIdentity(good.root_cert, good.signer_p12, b"wrong passphrase"),
            id="wrong-passphrase",
        ),
        pytest.param(
            lambda good, tmp: SigningIdentity(good.root_cert, tmp / "missing.p12", b"right"),
            id="missing-key",
        ),
    ],
)
def test_broken_key_fails_retryably_before_rendering_and_writes_nothing(
    store: BatchRecordStore, engine: Engine, tmp_path: Path, good: SigningIdentity, broken
) -> None:
    reports = tmp_path / "reports"
    activities = _activities(store, engine, reports, broken(good, tmp_path))

    with pytest.raises(ApplicationError) as caught:
        _publish(activities)

    error = caught.value
    assert error.type == SIGNING_UNAVAILABLE
    assert error.non_retryable is False  # the workflow keeps retrying until the key is fixed
    assert "signature pending" in str(error)
    assert _files(reports) == []
    assert store.get_batch(BATCH).report_path is None  # type: ignore[union-attr]


def test_signing_failure_after_rendering_writes_nothing(
    store: BatchRecordStore,
    engine: Engine,
    tmp_path: Path,
    good: SigningIdentity,
    foreign: SigningIdentity,
) -> None:
    # The key opens, but its certificate does not chain to the configured root: pyHanko
    # refuses at signing time, after the PDF was rendered.
    mismatched = SigningIdentity(foreign.root_cert, good.signer_p12, good.passphrase)
    reports = tmp_path / "reports"
    reports.mkdir()

    with pytest.raises(ApplicationError) as caught:
        _publish(_activities(store, engine, reports, mismatched))

    assert caught.value.type == SIGNING_UNAVAILABLE
    assert "does not validate" in str(caught.value)
    assert _files(reports) == []  # neither the PDF nor a temporary file


def test_outage_is_audited_once_however_often_it_is_retried(
    store: BatchRecordStore, engine: Engine, tmp_path: Path, good: SigningIdentity
) -> None:
    broken = SigningIdentity(good.root_cert, good.signer_p12, b"wrong")
    activities = _activities(store, engine, tmp_path / "reports", broken)
    for _ in range(3):
        with pytest.raises(ApplicationError):
            _publish(activities)

    entries = _pending_entries(engine)
    assert len(entries) == 1
    assert "wrong passphrase" in json.loads(entries[0].detail_json)["error"]


def test_once_the_key_is_repaired_exactly_one_signed_pdf_is_published(
    store: BatchRecordStore, engine: Engine, tmp_path: Path, good: SigningIdentity
) -> None:
    current = {"identity": SigningIdentity(good.root_cert, good.signer_p12, b"wrong")}
    reports = tmp_path / "reports"
    # A callable identity is resolved on every attempt, as a worker that outlives the fix does.
    activities = _activities(store, engine, reports, lambda: current["identity"])

    with pytest.raises(ApplicationError):
        _publish(activities)
    current["identity"] = good  # the admin restores the right passphrase
    first = _publish(activities)
    again = _publish(activities)  # a retry after success changes nothing

    assert again == first
    assert _files(reports) == [f"{BATCH}.pdf"]
    pdf = Path(first.path).read_bytes()
    result = verify_pdf(pdf, good.root_cert)
    assert result.ok, result.problems
    # The signed record itself tells the auditor the signature was late, and why.
    actions = [entry["action"] for entry in result.record["audit"]]  # type: ignore[index]
    assert SIGNATURE_PENDING in actions
    assert store.get_batch(BATCH).report_sha256 == first.sha256  # type: ignore[union-attr]


def test_unknown_batch_is_not_retried(
    engine: Engine, tmp_path: Path, good: SigningIdentity
) -> None:
    activities = _activities(BatchRecordStore(engine), engine, tmp_path, good)
    with pytest.raises(ApplicationError) as caught:
        _publish(activities)
    assert caught.value.non_retryable is True
    assert "not in the record store" in str(caught.value)


def test_unreachable_timestamp_authority_leaves_the_signature_pending(
    store: BatchRecordStore, engine: Engine, tmp_path: Path, good: SigningIdentity
) -> None:
    # Configured for PAdES B-T: a document without its timestamp is not published instead.
    reports = tmp_path / "reports"
    activities = ReportActivities(
        store, RecipeStore(engine), reports, good, timestamp_url="http://127.0.0.1:9/tsa"
    )
    with pytest.raises(ApplicationError) as caught:
        _publish(activities)
    assert caught.value.type == SIGNING_UNAVAILABLE
    assert "timestamp authority" in str(caught.value)
    assert _files(reports) == []
