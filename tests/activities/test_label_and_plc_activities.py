"""The label file and PLC set/read activities, called directly (no Temporal server)."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.devices import DeviceActivities
from activities.labels import LabelActivities
from tests.workflows.fakes import FakePlc, opener
from workflows.messages import LabelInput, PlcReadInput, PlcSetInput


class TestLabels:
    def test_label_is_written_once_and_a_retry_finds_it(self, tmp_path):
        labels = LabelActivities(tmp_path / "labels")
        first = labels.print_label(LabelInput("B-1", "p/l/label#2", "B-1 T-700"))
        again = labels.print_label(LabelInput("B-1", "p/l/label#2", "B-1 T-700"))
        assert first.path == again.path and again.replayed and not first.replayed
        assert first.sha256 == hashlib.sha256(b"B-1 T-700").hexdigest()
        assert first.path.endswith("labels/B-1/p%2Fl%2Flabel%232.txt")
        assert [p.name for p in (tmp_path / "labels" / "B-1").iterdir()] == [
            "p%2Fl%2Flabel%232.txt"]  # no temporary file left behind

    def test_a_different_label_for_the_same_phase_is_refused(self, tmp_path):
        labels = LabelActivities(tmp_path)
        labels.print_label(LabelInput("B-1", "p/l/label", "one"))
        with pytest.raises(ApplicationError) as info:
            labels.print_label(LabelInput("B-1", "p/l/label", "two"))
        assert info.value.type == "LabelConflict" and info.value.non_retryable


def devices(plc: FakePlc) -> DeviceActivities:
    return DeviceActivities(open_scale=opener(None), open_mixer=opener(None),
                            open_plc=opener(plc))


class TestPlc:
    def test_setpoint_is_written_and_read_back(self):
        plc = FakePlc(tags={"sp": Decimal(0)})
        held = ActivityEnvironment().run(devices(plc).plc_set,
                                         PlcSetInput("B", "c/c/heat", "C-1", "sp", "72.5"))
        assert held.value == "72.5" and plc.writes == [("sp", 72.5)]
        held = ActivityEnvironment().run(devices(plc).plc_set,
                                         PlcSetInput("B", "c/c/heat", "C-1", "sp", "80"))
        assert plc.writes[-1] == ("sp", Decimal("80")) and held.value == "80"

    def test_clamped_setpoint_fails_at_once_with_the_plc_message(self):
        plc = FakePlc(tags={"sp": 0}, clamp={"sp": Decimal(60)})
        with pytest.raises(ApplicationError) as info:
            ActivityEnvironment().run(devices(plc).plc_set,
                                      PlcSetInput("B", "c/c/heat", "C-1", "sp", "72.5"))
        # Retrying would write the same refused value: the recipe's on_fail decides now.
        assert "holds sp=60" in str(info.value) and info.value.non_retryable
        assert info.value.type == "SetpointRejected"

    def test_bad_setpoint_is_refused_before_the_plc_is_touched(self):
        plc = FakePlc(tags={"sp": Decimal(0)})
        with pytest.raises(ApplicationError) as info:
            ActivityEnvironment().run(devices(plc).plc_set,
                                      PlcSetInput("B", "c/c/heat", "C-1", "sp", "hot"))
        assert info.value.type == "BadSetpoint" and plc.writes == []

    def test_float32_read_shows_its_significant_digits(self):
        plc = FakePlc(tags={"t": 72.09999847412109})
        read = ActivityEnvironment().run(devices(plc).plc_read,
                                         PlcReadInput("B", "c/c/t", "C-1", "t"))
        assert read.value == "72.1"
