"""Activities that write the executed record. Each write is idempotent on its key."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.keepalive import keeps_alive
from store.batch_record import BatchRecordStore, RecordError
from workflows.messages import (
    BatchEvent,
    EventRecorded,
    ReleaseRecordInput,
    StateChangeRecordInput,
    StepRecorded,
    StepRecordInput,
    VerificationRecordInput,
)


class RecordActivities:
    def __init__(self, store: BatchRecordStore) -> None:
        self.store = store

    @activity.defn(name="record_event")
    @keeps_alive
    def record_event(self, event: BatchEvent) -> EventRecorded:
        with _business_errors():
            return EventRecorded(event_id=self.store.record_event(event))

    @activity.defn(name="record_step")
    @keeps_alive
    def record_step(self, step: StepRecordInput) -> StepRecorded:
        with _business_errors():
            return self.store.record_step(step)

    @activity.defn(name="record_release")
    @keeps_alive
    def record_release(self, release: ReleaseRecordInput) -> StepRecorded:
        with _business_errors():
            return self.store.record_release(release)

    @activity.defn(name="record_verification")
    @keeps_alive
    def record_verification(self, verification: VerificationRecordInput) -> StepRecorded:
        with _business_errors():
            return self.store.record_verification(verification)

    @activity.defn(name="record_state_change")
    @keeps_alive
    def record_state_change(self, change: StateChangeRecordInput) -> StepRecorded:
        with _business_errors():
            return self.store.record_state_change(change)


@contextmanager
def _business_errors() -> Iterator[None]:
    """A refused write will be refused again: fail it now instead of retrying."""
    try:
        yield
    except RecordError as exc:
        raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True) from exc
