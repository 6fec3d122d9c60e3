"""Users, password re-entry for signing, and what a signature binds."""

from __future__ import annotations

import pytest

from signatures.identity import AuthenticationFailed, NotPermitted, UserDirectory
from signatures.passwords import PasswordPolicyError
from store.audit import verify_chain
from store.batch_record import BatchRecordStore
from tests.databases import disable_audit_guard
from tests.sample_plan import PLAN
from workflows.messages import StepRecordInput

# A later signature of its session: the password alone (the first needs the user id).
LATER = {"username": None, "first_in_session": False}


@pytest.fixture
def users(engine):
    directory = UserDirectory(engine)
    directory.ensure_user("olivia", "Olivia Operator", "operator-pass-1", ["operator"], "test")
    return directory


def test_signing_requires_the_right_password(users):
    olivia = users.get("olivia")
    with pytest.raises(AuthenticationFailed, match="User id or password is wrong"):
        users.sign(olivia, "wrong-password-1", "performed", "operator", **LATER)


def test_signing_requires_the_role_for_the_meaning(users):
    olivia = users.get("olivia")
    with pytest.raises(NotPermitted, match="qa role"):
        users.sign(olivia, "operator-pass-1", "released", "qa", **LATER)


def test_signature_carries_name_meaning_and_utc_time(users):
    intent = users.sign(users.get("olivia"), "operator-pass-1", "performed", "operator", **LATER)
    assert intent.signer.full_name == "Olivia Operator" and intent.meaning == "performed"
    assert intent.signed_at.endswith("+00:00")


def test_weak_password_is_refused_with_the_rule(engine):
    with pytest.raises(PasswordPolicyError, match="at least 12"):
        UserDirectory(engine).ensure_user("x", "X", "short1", ["operator"], "test")


def test_seeding_a_user_twice_keeps_the_first(users):
    again = users.ensure_user("olivia", "Someone Else", "another-pass-2", ["qa"], "test")
    assert again.full_name == "Olivia Operator" and again.role_list == ["operator"]


def test_changed_value_after_signing_fails_verification(engine, users):
    store = BatchRecordStore(engine)
    store.create_batch("B-1", PLAN, {"scale": "S"}, "sup")
    intent = users.sign(users.get("olivia"), "operator-pass-1", "performed", "operator", **LATER)
    store.record_step(StepRecordInput("B-1", "b/b/lod", "u-1", "check", "LOD", "pass",
                                      {"value": "1.1", "unit": "percent"}, intent))
    record = store.assemble_record("B-1")
    assert record["steps"][0]["signature_verified"] is True

    with engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE step_records SET values_json = '{\"unit\": \"percent\", \"value\": \"0.9\"}'"
        )
    assert store.assemble_record("B-1")["steps"][0]["signature_verified"] is False


def test_recording_a_step_twice_with_one_key_writes_once(engine, users):
    store = BatchRecordStore(engine)
    store.create_batch("B-2", PLAN, {}, "sup")
    intent = users.sign(users.get("olivia"), "operator-pass-1", "performed", "operator", **LATER)
    step = StepRecordInput("B-2", "b/b/discharge", "u-9", "instruction", "Discharge", "pass",
                           {"confirmed": "yes"}, intent)
    first, second = store.record_step(step), store.record_step(step)
    assert first == second
    assert len(store.assemble_record("B-2")["steps"]) == 1


def test_audit_chain_detects_an_edited_entry(engine, users):
    from sqlmodel import Session

    with Session(engine) as session:
        assert verify_chain(session).ok
    with engine.begin() as conn:
        # An attacker with database access drops the append-only trigger first.
        disable_audit_guard(conn)
        conn.exec_driver_sql("UPDATE audit_events SET actor = 'mallory' WHERE id = 1")
    with Session(engine) as session:
        check = verify_chain(session)
        assert not check.ok and check.first_bad_id == 1
        assert "id=1" in check.describe() and "changed" in check.describe()
