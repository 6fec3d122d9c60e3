"""Side-by-side measurement: ebr against a bare baseline, interleaved in the same run.

Absolute times on a shared 2-core machine drift; a ratio of medians taken in
alternating rounds does not drift with them.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Series:
    """One measured quantity over the rounds (seconds, or a rate when `unit` says so)."""

    unit: str
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def summary(self) -> dict[str, float]:
        return {"median": self.median, "min": min(self.samples), "max": max(self.samples)}


@dataclass
class Comparison:
    id: str
    what: str
    ebr: dict[str, Series]
    bare: dict[str, Series]
    target: str
    notes: str = ""

    def ratio(self, metric: str) -> float:
        return self.ebr[metric].median / self.bare[metric].median

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "what": self.what,
            "target": self.target,
            "notes": self.notes,
            "metrics": {
                metric: {
                    "unit": self.ebr[metric].unit,
                    "ebr": self.ebr[metric].summary(),
                    "bare": self.bare[metric].summary() if metric in self.bare else None,
                    "ratio": self.ratio(metric) if metric in self.bare else None,
                }
                for metric in self.ebr
            },
        }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def interleave(
    rounds: int,
    ebr: Callable[[], Awaitable[dict[str, float]]],
    bare: Callable[[], Awaitable[dict[str, float]]],
    units: dict[str, str],
) -> tuple[dict[str, Series], dict[str, Series]]:
    """Alternate A and B (B first on odd rounds) and collect each metric per round."""
    a = {m: Series(u) for m, u in units.items()}
    b = {m: Series(u) for m, u in units.items()}
    for round_no in range(rounds):
        order = [(ebr, a), (bare, b)] if round_no % 2 == 0 else [(bare, b), (ebr, a)]
        for run, into in order:
            for metric, value in (await run()).items():
                into[metric].samples.append(value)
    return a, b


class Timer:
    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        self.elapsed = time.perf_counter() - self.start


__all__ = ["Comparison", "Series", "Timer", "asdict", "interleave", "percentile"]
