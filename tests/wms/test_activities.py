"""WMS and QMS activities: refusals become non-retryable ApplicationErrors typed by name;
a retried issue activity posts once."""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.qms import QmsActivities
from activities.wms import WmsActivities
from qms import messages as q
from qms.builtin import BuiltinQms
from wms import messages as m


def test_issue_activity_retried_posts_once_and_refusals_are_final(wms):
    env = ActivityEnvironment()
    acts = WmsActivities(wms)
    request = m.IssueRequest(key=m.issue_key("B-1", "p#1", 1), batch_id="B-1",
                             phase_instance="p#1", line=1, material_code="RM-ASC",
                             lot_number="ASC-2601", quantity="2", unit="kg", actor="olivia")
    assert not env.run(acts.issue, request).replayed
    assert env.run(acts.issue, request).replayed
    assert wms.lot(m.LotQuery("ASC-2601")).on_hand == "23"
    held = m.IssueRequest(key="k-2", batch_id="B-1", phase_instance="p#1", line=2,
                          material_code="RM-ASC", lot_number="ASC-2603", quantity="1",
                          unit="kg", actor="olivia")
    with pytest.raises(ApplicationError) as info:
        env.run(acts.issue, held)
    assert (info.value.type, info.value.non_retryable) == ("LotOnHold", True)


def test_qms_activities_open_and_list_deviations(wms, engine):
    env = ActivityEnvironment()
    acts = QmsActivities(BuiltinQms(engine, wms))
    env.run(acts.open_deviation, q.OpenDeviationRequest(
        key="d-1", batch_id="B-1", phase_instance="p#1", classification=q.CRITICAL,
        title="Wrong material scanned", description="MCC label at the ascorbic acid step",
        actor="workflow", origin=q.AUTOMATIC))
    assert len(env.run(acts.open_deviations, q.OpenDeviationsQuery("B-1")).deviations) == 1
    with pytest.raises(ApplicationError) as info:
        env.run(acts.add_note, q.NoteRequest(key="n", deviation_id="DEV-9", note="x",
                                             actor="sam"))
    assert info.value.type == "UnknownDeviation" and info.value.non_retryable
