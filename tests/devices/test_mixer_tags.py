"""Tag encoding: the register layout the PLC program and the driver agree on."""

from __future__ import annotations

import pytest

from devices.mixer_tags import MIXER_TAGS, Tag, span, tags_in


class TestEncoding:
    @pytest.mark.parametrize(
        ("tag", "value", "registers"),
        [
            (Tag("t", "holding", 0, "uint16"), 1200, [1200]),
            (Tag("t", "holding", 0, "int16"), -2, [0xFFFE]),
            (Tag("t", "holding", 0, "int32", "big"), 70000, [0x0001, 0x1170]),
            (Tag("t", "holding", 0, "int32", "little"), 70000, [0x1170, 0x0001]),
            (Tag("t", "holding", 0, "float32", "big"), 1.5, [0x3FC0, 0x0000]),
        ],
    )
    def test_values_round_trip_through_their_registers(
        self, tag: Tag, value: float, registers: list[int]
    ) -> None:
        assert tag.encode(value) == registers
        assert tag.decode(registers) == value

    def test_a_value_that_does_not_fit_the_type_is_refused(self) -> None:
        with pytest.raises(ValueError, match="does not fit uint16"):
            Tag("speed", "holding", 0, "uint16").encode(70000)


class TestMixerMap:
    def test_tags_do_not_overlap_within_a_table(self) -> None:
        for table in ("coil", "holding", "input"):
            used = [
                address
                for tag in tags_in(table, MIXER_TAGS)
                for address in range(tag.address, tag.address + tag.size)
            ]
            assert len(used) == len(set(used)), table

    def test_each_table_is_read_in_one_request(self) -> None:
        assert span(tags_in("holding", MIXER_TAGS)) == (0, 4)
        assert span(tags_in("input", MIXER_TAGS)) == (0, 3)
        assert span(tags_in("coil", MIXER_TAGS)) == (0, 2)
