"""100,000 random and mutated answer lines through the MT-SICS weight parser: each is a
reading from a well-formed weight line or a ScaleError; nothing else escapes."""

from __future__ import annotations

import random
import re
from decimal import Decimal

from devices.errors import ScaleError
from devices.mtsics import parse_weight_answer

FRAMES = 100_000
VALID = [b"S S    1200.40 g", b"S D     -12.5 kg", b"SI S 0.000 mg", b"S +", b"S -", b"ES"]
WELL_FORMED = re.compile(rb" *(S|SI) +[SD] +[-+]? *[0-9]{1,12}(\.[0-9]{1,6})? +[A-Za-z]{1,8}")
ALPHABET = b" SDI+-.0123456789gkmEL\t\x00\xff\xb5\"\r\n"


def mutate(rng: random.Random, frame: bytes) -> bytes:
    data = bytearray(frame)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(4)
        pos = rng.randrange(len(data) + 1)
        if kind == 0 and data:  # flip a byte
            data[min(pos, len(data) - 1)] = rng.randrange(256)
        elif kind == 1:  # insert from the protocol's own alphabet
            data.insert(pos, rng.choice(ALPHABET))
        elif kind == 2:  # truncate: a half frame
            del data[pos:]
        else:  # duplicate a slice: a frame run into another
            data[pos:pos] = data[: rng.randrange(len(data) + 1)]
    return bytes(data)


def frames(rng: random.Random):  # type: ignore[no-untyped-def]
    for i in range(FRAMES):
        if i % 3 == 0:
            yield bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
        else:
            yield mutate(rng, rng.choice(VALID))


def test_random_frames_give_a_reading_or_a_scale_error_only():
    rng = random.Random(20260601)  # fixed seed: a failure reproduces
    readings = errors = 0
    for data in frames(rng):
        try:
            reading = parse_weight_answer(data, label="FUZZ")
        except ScaleError:
            errors += 1
            continue
        # A value only ever comes from a well-formed weight line, and keeps its text.
        assert WELL_FORMED.fullmatch(data), data
        assert reading.value.is_finite() and isinstance(reading.value, Decimal)
        assert reading.raw_frames == (data.decode("ascii"),)
        readings += 1
    assert readings + errors == FRAMES
    assert readings > 1000 and errors > 50_000  # both paths were exercised
