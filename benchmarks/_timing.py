"""Timing: warm-up, interleaved repetitions, medians and paired ratios."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["PAUSE", "Stats", "interleaved", "paired_ratio", "stats_of"]

# Seconds between timed calls; see interleaved(). onnxruntime's worker threads
# spin for 45-65 ms after a run unless told to stop (CPU time burnt during a sleep
# after a run, on 2 cores), so the rest must outlast that.
PAUSE = 0.1


@dataclass(frozen=True)
class Stats:
    """Summary of repeated measurements (seconds, bytes, ... as the caller says)."""

    median: float
    minimum: float
    maximum: float
    n: int
    samples: tuple[float, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "median": self.median,
            "min": self.minimum,
            "max": self.maximum,
            "n": self.n,
            "samples": list(self.samples),
        }


def stats_of(samples: Sequence[float]) -> Stats:
    """Median, min and max of ``samples`` (at least one)."""
    if not samples:
        raise ValueError("stats_of needs at least one sample")
    return Stats(
        median=statistics.median(samples),
        minimum=min(samples),
        maximum=max(samples),
        n=len(samples),
        samples=tuple(samples),
    )


def interleaved(
    cases: Mapping[str, Callable[[], object]],
    *,
    repeat: int,
    warmup: int = 1,
    pause: float = PAUSE,
    before: Mapping[str, Callable[[], object]] | None = None,
) -> dict[str, Stats]:
    """Time each case ``repeat`` times, round-robin, after ``warmup`` untimed rounds.

    Interleaving puts every case under the same background load, so ratios
    between cases are fair even when the machine is shared. The garbage
    collector is paused while a case runs (and run between rounds), and the
    clock rests ``pause`` seconds before each case: onnxruntime's worker threads
    spin for 45-65 ms after every run (unless told to stop, as edgesam's do),
    and without the rest one session's spinning would slow the next case down
    (a different session, another pool): the bare cases' spinning would be
    charged to the SDK's cases that follow them. ``before[name]``, where given,
    runs untimed right before its case, after the rest: to time a call in the
    state another call leaves.
    """
    setup = before or {}
    for _ in range(warmup):
        for name, function in cases.items():
            if name in setup:
                setup[name]()
            function()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeat):
        gc.collect()
        for name, function in cases.items():
            if pause:
                time.sleep(pause)
            if name in setup:
                setup[name]()
            gc.disable()
            try:
                start = time.perf_counter()
                function()
                samples[name].append(time.perf_counter() - start)
            finally:
                gc.enable()
    return {name: stats_of(values) for name, values in samples.items()}


def paired_ratio(numerator: Stats, denominator: Stats) -> float:
    """Median of the per-round ratios ``numerator[i] / denominator[i]``.

    Rounds were measured back to back, so each ratio sees one background load;
    the median of those is steadier than the ratio of the two medians.
    """
    ratios = [
        top / bottom
        for top, bottom in zip(numerator.samples, denominator.samples, strict=True)
        if bottom > 0
    ]
    return statistics.median(ratios) if ratios else float("nan")
