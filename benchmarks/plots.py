"""Figures of a suite's results (matplotlib, Agg backend, PNG written atomically)."""
import io
import json
import math
import os

import matplotlib
import matplotlib.ticker

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)
import numpy as np  # noqa: E402

from plugins.atomic_files import atomic_write_bytes  # noqa: E402

from .stats import describe  # noqa: E402

__all__ = ['save_figure', 'plot_test_metric', 'plot_schedule_curves', 'load_history', 'schedule_series',
           'continuation_weight', 'plot_axes',
           'plot_capacity_gap', 'plot_reference_change']


def save_figure(figure, path):
    """Saves ``figure`` as PNG by rewrite-then-rename, then closes it."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format='png', dpi=120, bbox_inches='tight')
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())


def _student_methods(suite, records):
    """The suite's student methods with records, in suite order; with axes, only those at the reference point."""
    present = {r['method'] for r in records if r['role'] == 'student'}
    reference = {axis: settings['reference'] for axis, settings in (suite.axes or {}).items()}
    points = {name: dict(reference, **dict(spec.axes)) for name, spec in suite.methods.items()}
    return [method for method in suite.methods if method in present and points[method] == reference]


def plot_test_metric(suite, records, path, split='test'):
    """The metric per student method: mean +- std over seeds (error bar) and each seed (dots). ``split='val'``
    plots the best validation figure instead (a tuning suite chooses on it)."""
    methods = _student_methods(suite, records)
    if not methods:
        return None
    metric = next(r['metric'] for r in records if r['role'] == 'student')
    figure, axis = plt.subplots(figsize=(max(4.0, 0.9 * len(methods) + 1.5), 3.6))
    for index, method in enumerate(methods):
        values = [r['test'][metric] if split == 'test' else r['best_val'] for r in records if r['method'] == method]
        summary = describe(values)
        axis.errorbar(index, summary['mean'], yerr=0 if math.isnan(summary['std']) else summary['std'],
                      fmt='o', color='C0' if suite.methods[method].group == 'main' else 'C1', capsize=4, markersize=7)
        axis.scatter(np.full(len(values), index + 0.15), values, s=10, color='0.5', zorder=3)
    axis.set_xticks(range(len(methods)))
    axis.set_xticklabels(methods, rotation=30, ha='right')
    label = 'test' if split == 'test' else 'best validation'
    axis.set_ylabel(f'{label} {metric}')
    axis.set_title(f'{suite.name}: {label} {metric} (mean ± std; grey: seeds)')
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


def continuation_weight(history):
    """``(name, series)`` of what moves a run's objective besides T: Continuation-KD's label weight ``psi``, or the
    continuation parameter ``lambda`` when something else in the schedule state (T, alpha...) moves with it (a
    lambda nothing depends on, e.g. KD with a fixed-strength noise mitigation, is left out); None otherwise."""
    psi = schedule_series(history, 'psi')
    if not np.all(np.isnan(psi)):
        return 'psi', psi
    lam = schedule_series(history, 'lambda')
    if np.all(np.isnan(lam)) or len(set(lam[~np.isnan(lam)].tolist())) < 2:
        return None
    keys = {key for entry in history for state in entry.get('schedule', {}).values() for key in state} - {'lambda'}
    moving = [key for key in keys if len(set(schedule_series(history, key)[~np.isnan(lam)].tolist())) > 1]
    return ('lambda', lam) if moving else None


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
        weight = continuation_weight(histories[0][:length])
        if weight is not None:
            middle.step(epochs, weight[1], where='post', color=color, label=f'{method} ({weight[0]})')
        stages = [entry['stage'] for entry in histories[0][:length]]
        for epoch, (previous, current) in enumerate(zip(stages, stages[1:]), 1):
            if current != previous:
                for axis in (top, middle, bottom):
                    axis.axvline(epoch + 0.5, color=color, linestyle=':', linewidth=0.8)
    top.set_ylabel('temperature T')
    top.set_title(f'{suite.name}: temperature T, label weight psi / continuation lambda, validation {metric}; '
                  f'dotted: stage switch', fontsize=10)
    middle.set_ylabel('psi or lambda')
    bottom.set_xlabel('epoch')
    bottom.set_ylabel(f'validation {metric}')
    bottom.legend(fontsize=8, ncol=2)
    for axis in (top, middle, bottom):
        if axis is not bottom and axis.get_legend_handles_labels()[1]:
            axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    save_figure(figure, path)
    return path


def _interval(row, prefix):
    low, high = row[f'{prefix}_ci_low'], row[f'{prefix}_ci_high']
    return (low, high) if not (math.isnan(low) or math.isnan(high)) else (row[f'{prefix}_mean'],) * 2


def plot_capacity_gap(suite, rows, axis, path):
    """Test metric against student parameters per method (95% t-interval of the mean as a band), and each
    method's paired difference with the baseline at the same width (95% interval band)."""
    from .report import axis_point, axis_values, rows_at
    series = {}
    for value in axis_values(suite, axis):
        for row in rows_at(suite, rows, axis, value):
            if row['n'] and row['student_params']:
                series.setdefault(row['family'], []).append(row)
    series = {family: members for family, members in series.items() if len(members) > 1}
    if not series:
        return None
    metric = next(iter(series.values()))[0]['metric']
    figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(7.5, 7.0), height_ratios=(3, 2))
    for index, (family, members) in enumerate(series.items()):
        members = sorted(members, key=lambda row: row['student_params'])
        x = [row['student_params'] for row in members]
        color = f'C{index}'
        top.plot(x, [row['test_mean'] for row in members], marker='o', color=color, label=family)
        bands = [_interval(row, 'test') for row in members]
        top.fill_between(x, [b[0] for b in bands], [b[1] for b in bands], color=color, alpha=0.15)
        compared = [row for row in members if row['baseline'] is not None]
        if compared:
            cx = [row['student_params'] for row in compared]
            bottom.plot(cx, [row['diff_mean'] for row in compared], marker='o', color=color, label=family)
            bands = [_interval(row, 'diff') for row in compared]
            bottom.fill_between(cx, [b[0] for b in bands], [b[1] for b in bands], color=color, alpha=0.15)
    ticks = sorted({(row['student_params'], axis_point(suite.methods[row['method']], suite)[axis])
                    for members in series.values() for row in members})
    bottom.axhline(0.0, color='0.3', linewidth=0.8)
    top.set_xscale('log')
    bottom.set_xticks([params for params, _ in ticks], [f'{params}\n{axis} {value}' for params, value in ticks])
    bottom.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    top.set_ylabel(f'test {metric}')
    top.set_title(f'{suite.name}: test {metric} by student size (bands: 95% CI of the mean over seeds)', fontsize=10)
    bottom.set_ylabel(f'Δ test vs {suite.baseline} (paired)')
    bottom.set_xlabel('student parameters (log scale)')
    for axis_ in (top, bottom):
        axis_.grid(alpha=0.3)
        axis_.legend(fontsize=8)
    save_figure(figure, path)
    return path


def plot_reference_change(suite, rows, axis, path):
    """Per method: the paired change against the axis's reference value (e.g. noisy minus clean teacher), with
    its 95% interval and each seed's change."""
    changed = [row for row in rows if row.get('reference_method')]
    if not changed:
        return None
    by_method = {row['method']: row for row in rows}
    metric = changed[0]['metric']
    figure, axis_ = plt.subplots(figsize=(max(4.0, 1.1 * len(changed) + 1.5), 3.8))
    for index, row in enumerate(changed):
        low, high = _interval(row, 'drop')
        axis_.errorbar(index, row['drop_mean'], yerr=[[row['drop_mean'] - low], [high - row['drop_mean']]],
                       fmt='o', color='C3', capsize=4, markersize=7)
        clean = by_method[row['reference_method']]['test_by_seed']
        seeds = sorted(set(clean) & set(row['test_by_seed']))
        axis_.scatter(np.full(len(seeds), index + 0.15), [row['test_by_seed'][s] - clean[s] for s in seeds],
                      s=10, color='0.5', zorder=3)
    axis_.axhline(0.0, color='0.3', linewidth=0.8)
    axis_.set_xticks(range(len(changed)))
    axis_.set_xticklabels([row['family'] for row in changed], rotation=20, ha='right')
    settings = suite.axes[axis]
    values = sorted({dict(suite.methods[row['method']].axes)[axis] for row in changed})
    if len(values) > 1:
        axis_.set_xticklabels([f"{row['family']}\n{axis} {dict(suite.methods[row['method']].axes)[axis]}"
                               for row in changed], rotation=20, ha='right')
    axis_.set_ylabel(f'change of test {metric}')
    axis_.set_title(f'{suite.name}: test {metric} at {axis} {", ".join(map(str, values))} minus at '
                    f'{settings["reference"]}, paired by seed\n(mean and 95% CI; grey: each seed)', fontsize=10)
    axis_.grid(axis='y', alpha=0.3)
    save_figure(figure, path)
    return path


def plot_axes(suite, rows, output_dir):
    """One figure per suite axis: ``<axis>.png``; returns the paths written."""
    written = []
    for axis, settings in (suite.axes or {}).items():
        draw = plot_reference_change if settings.get('against_reference') else plot_capacity_gap
        path = draw(suite, rows, axis, os.path.join(output_dir, f'{axis}.png'))
        if path:
            written.append(path)
    return written
