"""Interleaved timing on two clocks, paired ratios, and the time tables of ``benchmarks/perf.py``.

The samples are taken here, not by :class:`torch.utils.benchmark.Timer`: its ``timeit`` adds warm-up calls of its
own and sets the torch thread count for the measurement, while our samples are whole training steps and epochs of
stateful boxes (one more call trains one more step), read on the wall clock and on this process's CPU clock at
once, with the variants interleaved in rotating order so that a slow spell of a shared machine hits every variant
alike. The tables are torch.utils.benchmark's: each variant's samples become a
:class:`~torch.utils.benchmark.Measurement` (``description`` = the clock), printed by
:class:`~torch.utils.benchmark.Compare`.
"""
import statistics
import time
from typing import Callable, Dict, List

import torch
from torch.utils.benchmark import Compare, Measurement
from torch.utils.benchmark.utils.common import TaskSpec

__all__ = ['CLOCKS', 'synchronize', 'time_interleaved', 'paired_ratios', 'summary', 'merge_by_clock',
           'compare_table']

CLOCKS = ('wall', 'cpu')
Times = Dict[str, Dict[str, List[float]]]  # {clock: {variant: [seconds per repetition]}}


def synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_interleaved(variants: Dict[str, Callable[[], object]], repeats: int, device: torch.device,
                     warmup: int = 1) -> Times:
    """{clock: {name: [seconds per repetition]}} for the ``wall`` clock and the process ``cpu`` clock.

    Each repetition runs every variant once, the order rotating. The CPU clock (this process's CPU time)
    barely moves when other processes compete for the cores, so it is reported beside the wall clock.
    """
    names = list(variants)
    for name in names:
        for _ in range(warmup):
            variants[name]()
    times = {clock: {name: [] for name in names} for clock in CLOCKS}
    for repeat in range(repeats):
        for name in names[repeat % len(names):] + names[:repeat % len(names)]:
            synchronize(device)
            wall, cpu = time.perf_counter(), time.process_time()
            variants[name]()
            synchronize(device)
            times['wall'][name].append(time.perf_counter() - wall)
            times['cpu'][name].append(time.process_time() - cpu)
    return times


def _quartiles(values):
    if len(values) < 2:
        return [values[0], values[0]]
    first, _, third = statistics.quantiles(values, n=4, method='inclusive')
    return [first, third]


def paired_ratios(times: Times, pairs: Dict[str, tuple]) -> dict:
    """``{'ratios': {clock: {label: median}}, 'ratio_quartiles': {clock: {label: [first, third]}}}`` of the
    per-repetition ratios times[name][r] / times[reference][r] (same repetition, adjacent in time), for
    ``pairs`` = {label: (name, reference)}: the median, and the quartiles that show how far the noise reaches."""
    per_repetition = {clock: {label: [a / b for a, b in zip(by_name[name], by_name[reference])]
                              for label, (name, reference) in pairs.items()} for clock, by_name in times.items()}
    return {'ratios': {clock: {label: statistics.median(values) for label, values in by_label.items()}
                       for clock, by_label in per_repetition.items()},
            'ratio_quartiles': {clock: {label: _quartiles(values) for label, values in by_label.items()}
                                for clock, by_label in per_repetition.items()}}


def merge_by_clock(*parts: dict) -> dict:
    """{clock: the union of every part's {label: value} for that clock}."""
    return {clock: {label: value for part in parts for label, value in part[clock].items()} for clock in CLOCKS}


def summary(times: Times, calls: int = 1) -> dict:
    """{clock: {name: median_s, min_s, max_s, samples_s}}, per call when each sample timed ``calls`` calls."""
    return {clock: {name: {'median_s': statistics.median(values) / calls, 'min_s': min(values) / calls,
                           'max_s': max(values) / calls, 'samples_s': [v / calls for v in values]}
                    for name, values in by_name.items()} for clock, by_name in times.items()}


def _measurements(label: str, section: dict, threads: int) -> List[Measurement]:
    return [Measurement(1, section[clock][name]['samples_s'], TaskSpec(
        stmt=name, setup='', label=label, sub_label=name, description=clock, num_threads=threads))
        for name in section['wall'] for clock in CLOCKS]


def compare_table(sections: Dict[str, dict], threads: int) -> str:
    """torch.utils.benchmark's table of :func:`summary` sections ({label: section}): a block per label, a row per
    variant, the median of each clock in a column."""
    measurements = [m for label, section in sections.items() for m in _measurements(label, section, threads)]
    return str(Compare(measurements)).rstrip()
