"""Per-tag word and byte order: the registers on the wire are the ones the device expects."""

from __future__ import annotations

import pytest

from devices.mixer_tags import Tag


@pytest.mark.parametrize(
    ("word_order", "byte_order", "registers"),
    [
        ("big", "big", [0x1234, 0x5678]),  # ABCD: the Modbus standard
        ("little", "big", [0x5678, 0x1234]),  # CDAB: word-swapped
        ("big", "little", [0x3412, 0x7856]),  # BADC: byte-swapped
        ("little", "little", [0x7856, 0x3412]),  # DCBA: fully reversed
    ],
)
def test_int32_layouts(word_order, byte_order, registers):
    tag = Tag("x", "holding", 0, "int32", word_order, byte_order)
    assert tag.encode(0x12345678) == registers
    assert tag.decode(registers) == 0x12345678


def test_float32_with_swapped_bytes_round_trips():
    tag = Tag("t", "input", 0, "float32", "little", "little")
    assert tag.decode(tag.encode(72.5)) == pytest.approx(72.5)


def test_int16_byte_order_swaps_within_the_register():
    assert Tag("n", "holding", 0, "int16", byte_order="little").encode(-2) == [0xFEFF]
