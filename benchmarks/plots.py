"""Figures of a suite's results (matplotlib, Agg backend, PNG written atomically)."""
import io
import json
import math
import os

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)
import numpy as np  # noqa: E402

from plugins.checkpoint import atomic_write_bytes  # noqa: E402

from .stats import describe  # noqa: E402

__all__ = ['save_figure', 'plot_test_metric', 'plot_schedule_curves', 'load_history', 'schedule_series']


def save_figure(figure, path):
    """Saves ``figure`` as PNG by rewrite-then-rename, then closes it."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format='png', dpi=120, bbox_inches='tight')
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())


def _student_methods(suite, records):
    present = {r['method'] for r in records if r['role'] == 'student'}
    return [method for method in suite.methods if method in present]


def plot_test_metric(suite, records, path):
    """Test metric per student method: mean +- std over seeds (error bar) and each seed (dots)."""
    methods = _student_methods(suite, records)
    if not methods:
        return None
    metric = next(r['metric'] for r in records if r['role'] == 'student')
    figure, axis = plt.subplots(figsize=(max(4.0, 0.9 * len(methods) + 1.5), 3.6))
    for index, method in enumerate(methods):
        values = [r['test'][metric] for r in records if r['method'] == method]
        summary = describe(values)
        axis.errorbar(index, summary['mean'], yerr=0 if math.isnan(summary['std']) else summary['std'],
                      fmt='o', color='C0' if suite.methods[method].group == 'main' else 'C1', capsize=4, markersize=7)
        axis.scatter(np.full(len(values), index + 0.15), values, s=10, color='0.5', zorder=3)
    axis.set_xticks(range(len(methods)))
    axis.set_xticklabels(methods, rotation=30, ha='right')
    axis.set_ylabel(f'test {metric}')
    axis.set_title(f'{suite.name}: test {metric} (mean ± std; grey: seeds)')
    axis.grid(axis='y', alpha=0.3)
    save_figure(figure, path)
    return path


def load_history(output_dir, record):
    """The per-epoch history of a finished run (from its result.json), or None if the file is gone."""
    path = os.path.join(output_dir, record['run_dir'], 'result.json')
    if not os.path.isfile(path):
        return None
    with open(path, 'r', encoding='utf-8') as fp:
        return json.load(fp)['history']


def schedule_series(history, key):
    """Per-epoch value of schedule quantity ``key`` ('T', 'lambda', 'phi'...), NaN where no loss is scheduled."""
    series = []
    for entry in history:
        values = [state[key] for state in entry.get('schedule', {}).values() if key in state]
        series.append(values[0] if values else math.nan)
    return np.array(series, dtype=float)


def plot_schedule_curves(suite, records, output_dir, path):
    """Per epoch: the temperature T of each method whose T moves (Stage I of Annealing-KD), the continuation
    parameter lambda of every scheduled loss, and the validation metric (mean over seeds, band = std) of every
    main student method."""
    methods = [m for m in _student_methods(suite, records) if suite.methods[m].group == 'main']
    if not methods:
        return None
    metric = next(r['metric'] for r in records if r['role'] == 'student')
    figure, (top, middle, bottom) = plt.subplots(3, 1, sharex=True, figsize=(7.5, 7.5), height_ratios=(1, 1, 2))
    for index, method in enumerate(methods):
        histories = [h for h in (load_history(output_dir, r) for r in records if r['method'] == method) if h]
        if not histories:
            continue
        length = min(len(h) for h in histories)
        epochs = np.arange(1, length + 1)
        curves = np.array([[entry['val'][metric] for entry in h[:length]] for h in histories])
        mean, std = curves.mean(axis=0), curves.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros(length)
        color = f'C{index}'
        bottom.plot(epochs, mean, color=color, label=method, linewidth=1.2)
        bottom.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.15)
        temperature = schedule_series(histories[0][:length], 'T')
        if len(set(temperature[~np.isnan(temperature)].tolist())) > 1:  # T moves: Annealing-KD's Stage I
            top.step(epochs, temperature, where='post', color=color, label=method)
        lam = schedule_series(histories[0][:length], 'lambda')
        if not np.all(np.isnan(lam)):
            middle.step(epochs, lam, where='post', color=color, label=method)
        stages = [entry['stage'] for entry in histories[0][:length]]
        for epoch, (previous, current) in enumerate(zip(stages, stages[1:]), 1):
            if current != previous:
                for axis in (top, middle, bottom):
                    axis.axvline(epoch + 0.5, color=color, linestyle=':', linewidth=0.8)
    top.set_ylabel('temperature T')
    top.set_title(f'{suite.name}: Stage-I temperature, continuation lambda and validation {metric}; '
                  f'dotted: stage switch', fontsize=10)
    middle.set_ylabel('lambda')
    bottom.set_xlabel('epoch')
    bottom.set_ylabel(f'validation {metric}')
    bottom.legend(fontsize=8, ncol=2)
    for axis in (top, middle, bottom):
        if axis is not bottom and axis.get_legend_handles_labels()[1]:
            axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    save_figure(figure, path)
    return path
