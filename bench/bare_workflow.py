"""The bare engine baseline: a workflow whose update runs one activity. No validation
rules, no record store, no signatures — what Temporal alone costs for one step."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError


@activity.defn(name="bare_write")
def bare_write(step: int) -> int:
    return step


@workflow.defn(name="BareBatch")
class BareBatch:
    def __init__(self) -> None:
        self.done = 0

    @workflow.run
    async def run(self, steps: int) -> int:
        await workflow.wait_condition(lambda: self.done >= steps)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.done

    @workflow.update
    async def step(self, step: int) -> int:
        await workflow.execute_activity(
            bare_write, step, start_to_close_timeout=timedelta(seconds=30)
        )
        self.done += 1
        return self.done

    @step.validator
    def _validate(self, step: int) -> None:
        if step != self.done:
            raise ApplicationError(f"expected step {self.done}", non_retryable=True)
