"""Tables of a suite's results: per method over seeds, paired differences against the baseline, diagnostics.

``summary.md`` and ``summary.csv`` in the results directory, both written atomically. The primary metric and
its direction come from the runs (``result['metric']``, ``higher_is_better``). Selection is on validation:
the "best val" column of an ablation sweep marks the member with the best mean validation metric; test
figures are reported for all members, never used to choose. Failed runs (ledger lines with ``"status":
"failed"``; lines without the key are successful) are counted per method and left out of every statistic.
"""
import csv
import io
import math
import os

from plugins.atomic_files import atomic_write_text

from .records import record_status
from .stats import describe, mean_interval, paired_comparison

__all__ = ['summarize', 'sweep_tables', 'markdown_report', 'csv_report', 'write_report', 'is_ok', 'axis_point',
           'method_baselines', 'reference_methods', 'add_reference_comparisons', 'compare', 'axis_values', 'rows_at']

CSV_FIELDS = ['suite', 'method', 'role', 'family', 'axes', 'group', 'teacher', 'epoch_split', 'n', 'metric',
              'higher_is_better', 'val_mean', 'val_std', 'test_mean', 'test_std', 'test_ci_low', 'test_ci_high', 'baseline', 'diff_mean', 'diff_std', 'diff_ci_low', 'diff_ci_high', 't', 'p_value',
              'reference_method', 'drop_mean', 'drop_std', 'drop_ci_low', 'drop_ci_high', 'drop_p', 'failed',
              'dead_unit_runs', 'dead_units', 'diagnosed_runs', 'loss_growth_flags', 'max_loss_growth',
              'train_samples_per_s', 'peak_memory_mb', 'wall_time_s', 'student_params']


def is_ok(record):
    """A successful run: its ledger line has no ``status`` (older lines) or ``status: ok``."""
    return record_status(record) == 'ok'


def _by_method(records):
    methods = {}
    for record in records:
        methods.setdefault(record['method'], []).append(record)
    return methods


def _diagnostics(runs):
    """Dead ReLU units and loss-growth flags over the runs that carry diagnostics (older lines may not)."""
    diagnosed = [r['diagnostics'] for r in runs if r.get('diagnostics')]
    dead = [d['dead_relu']['dead_units'] for d in diagnosed if d.get('dead_relu')]
    growth = [d['loss_growth'] for d in diagnosed if d.get('loss_growth')]
    finite = [g['max_growth'] for g in growth if g['max_growth'] is not None]
    return {'diagnosed_runs': len(diagnosed), 'dead_unit_runs': sum(count > 0 for count in dead),
            'dead_units': sum(dead), 'relu_runs': len(dead),
            'loss_growth_flags': sum(bool(g['flagged']) for g in growth),
            'max_loss_growth': max(finite) if len(finite) == len(growth) and finite else
            (math.inf if growth else math.nan)}


def _empty_row(method, runs):
    first = runs[0]
    return {'suite': first.get('suite'), 'method': method, 'role': first.get('role'), 'group': first.get('group'),
            'teacher': first.get('teacher'), 'epoch_split': '-', 'n': 0, 'seeds': [], 'failed': len(runs),
            'metric': first.get('metric'), 'higher_is_better': first.get('higher_is_better', True),
            'val_mean': math.nan, 'val_std': math.nan, 'test_mean': math.nan, 'test_std': math.nan,
            'test_ci_low': math.nan, 'test_ci_high': math.nan, 'test_by_seed': {},
            'train_samples_per_s': math.nan, 'peak_memory_mb': math.nan, 'wall_time_s': math.nan,
            'student_params': first.get('student_params'), **_diagnostics([])}


def _method_row(method, all_runs):
    runs = sorted((r for r in all_runs if is_ok(r)), key=lambda r: r['seed'])
    if not runs:
        return _empty_row(method, all_runs)
    metric = runs[0]['metric']
    test = {r['seed']: r['test'][metric] for r in runs}
    val, score = describe(r['best_val'] for r in runs), describe(test.values())
    low, high = mean_interval(list(test.values()))
    return {
        'suite': runs[0]['suite'], 'method': method, 'role': runs[0]['role'], 'group': runs[0].get('group'),
        'teacher': runs[0].get('teacher'), 'epoch_split': ' / '.join(sorted({r['epoch_split'] for r in runs})),
        'n': score['n'], 'seeds': sorted(test), 'failed': len(all_runs) - len(runs), 'metric': metric,
        'higher_is_better': runs[0]['higher_is_better'], 'val_mean': val['mean'], 'val_std': val['std'],
        'test_mean': score['mean'], 'test_std': score['std'], 'test_ci_low': low, 'test_ci_high': high,
        'test_by_seed': test,
        'train_samples_per_s': describe(r['train_samples_per_s'] or math.nan for r in runs)['mean'],
        'peak_memory_mb': max(r['peak_memory_mb'] for r in runs),
        'wall_time_s': describe(r['wall_time_s'] for r in runs)['mean'],
        'student_params': runs[0]['student_params'], **_diagnostics(runs),
    }


def compare(row, other, label='diff'):
    """The paired comparison of ``row`` with ``other`` (same seeds) as ``{label}_mean``, ``_std``, ``_ci_low``,
    ``_ci_high``, ``t`` / ``p_value`` (for ``diff``) or ``{label}_t`` / ``{label}_p``."""
    result = paired_comparison(row['test_by_seed'], other['test_by_seed'])
    keys = ('t', 'p_value') if label == 'diff' else (f'{label}_t', f'{label}_p')
    return {f'{label}_mean': result['mean_diff'], f'{label}_std': result['std_diff'],
            f'{label}_ci_low': float(result['ci_low']), f'{label}_ci_high': float(result['ci_high']),
            f'{label}_n': result['n'], keys[0]: result['t'], keys[1]: result['p_value']}


def summarize(records, baseline='kd', order=None, baselines=None):
    """One row per method (teacher and TA first), with seed statistics, diagnostics, failed runs and the paired
    test against its baseline: ``baselines[method]`` when given (e.g. KD at the same student width), else
    ``baseline``."""
    methods = _by_method(records)
    names = [m for m in ('teacher', 'ta') if m in methods] + \
        [m for m in (order or sorted(methods)) if m in methods and m not in ('teacher', 'ta')]
    rows = [_method_row(method, methods[method]) for method in names]
    by_method = {row['method']: row for row in rows}
    for row in rows:
        row.update(baseline=None, diff_mean=math.nan, diff_std=math.nan, diff_ci_low=math.nan,
                   diff_ci_high=math.nan, t=math.nan, p_value=math.nan)
        reference = (baselines or {}).get(row['method'], baseline)
        if row['role'] == 'student' and row['n'] and reference in by_method and reference != row['method'] \
                and by_method[reference]['n']:
            row.update(compare(row, by_method[reference]), baseline=reference)
    return rows


def axis_point(spec, suite):
    """{axis: value} of a method: its own axes, the suite's reference value for the others."""
    point = {axis: settings['reference'] for axis, settings in (suite.axes or {}).items()}
    point.update(dict(spec.axes))
    return point


def axis_values(suite, axis):
    """The values ``axis`` takes over the suite's methods, sorted."""
    return sorted({axis_point(spec, suite)[axis] for spec in suite.methods.values()})


def rows_at(suite, rows, axis, value):
    """The student rows at the reference point except ``axis`` = ``value``, in suite order."""
    target = {name: settings['reference'] for name, settings in suite.axes.items()}
    target[axis] = value
    return [row for row in rows if row['method'] in suite.methods and row['role'] == 'student'
            and axis_point(suite.methods[row['method']], suite) == target]


def _family(name, spec):
    return spec.family or name


def method_baselines(suite):
    """{method: the baseline family's method at the same axis point} (the suite's baseline where none)."""
    base_family = _family(suite.baseline, suite.methods[suite.baseline]) if suite.baseline in suite.methods \
        else suite.baseline
    points = {name: axis_point(spec, suite) for name, spec in suite.methods.items()}
    baselines = {}
    for name, spec in suite.methods.items():
        matches = [other for other, other_spec in suite.methods.items()
                   if _family(other, other_spec) == base_family and points[other] == points[name]]
        baselines[name] = matches[0] if matches else suite.baseline
    return baselines


def reference_methods(suite, axis):
    """{method: the same family at ``axis``'s reference value, other axes unchanged} for methods off it."""
    reference = suite.axes[axis]['reference']
    points = {name: axis_point(spec, suite) for name, spec in suite.methods.items()}
    found = {}
    for name, spec in suite.methods.items():
        if points[name][axis] == reference:
            continue
        target = dict(points[name], **{axis: reference})
        for other, other_spec in suite.methods.items():
            if _family(other, other_spec) == _family(name, spec) and points[other] == target:
                found[name] = other
                break
    return found


def add_reference_comparisons(suite, rows):
    """For every axis compared against its reference (e.g. the noisy teacher against the clean one): sets each
    off-reference row's ``reference_method`` and the paired change ``drop_mean`` / ``_ci_low`` / ``_ci_high`` /
    ``drop_p`` (the row minus the same family at the reference value, per seed)."""
    by_method = {row['method']: row for row in rows}
    for axis, settings in (suite.axes or {}).items():
        if not settings.get('against_reference'):
            continue
        for method, reference in reference_methods(suite, axis).items():
            row, other = by_method.get(method), by_method.get(reference)
            if row is not None and other is not None and row['n'] and other['n']:
                row.update(compare(row, other, 'drop'), reference_method=reference)
    return rows


def sweep_tables(suite, rows):
    """{sweep name: [(row, selected)]}: the members of each ablation sweep, the best mean validation one selected."""
    by_method = {row['method']: row for row in rows}
    tables = {}
    for method, spec in suite.methods.items():
        for sweep in spec.sweeps:
            if method in by_method and by_method[method]['n']:
                tables.setdefault(sweep, []).append(by_method[method])
    selected = {}
    for sweep, members in tables.items():
        sign = 1 if members[0]['higher_is_better'] else -1
        best = max(members, key=lambda row: sign * row['val_mean'])
        selected[sweep] = [(row, row is best) for row in members]
    return selected


def markdown_report(suite, rows, command=None):
    """The Markdown summary (see :mod:`benchmarks.markdown`)."""
    from .markdown import render_summary
    return render_summary(suite, rows, command)


def csv_report(rows):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction='ignore', lineterminator='\n')
    writer.writeheader()
    for row in rows:
        writer.writerow({key: ('' if isinstance(value, float) and math.isnan(value) else value)
                         for key, value in row.items()})
    return buffer.getvalue()


def annotate(suite, rows):
    """Adds each row's ``family`` and ``axes`` (as 'width=4;teacher_noise=0.0') from the suite."""
    for row in rows:
        spec = suite.methods.get(row['method'])
        row['family'] = _family(row['method'], spec) if spec else row['method']
        row['axes'] = ';'.join(f'{k}={v}' for k, v in axis_point(spec, suite).items()) if spec else ''
    return rows


def write_report(suite, records, output_dir, command=None, log=print):
    """Writes summary.md, summary.csv and the plots; returns the rows."""
    baselines = method_baselines(suite) if suite.axes else None
    rows = annotate(suite, summarize(records, baseline=suite.baseline, order=list(suite.methods),
                                     baselines=baselines))
    add_reference_comparisons(suite, rows)
    atomic_write_text(os.path.join(output_dir, 'summary.md'), markdown_report(suite, rows, command))
    atomic_write_text(os.path.join(output_dir, 'summary.csv'), csv_report(rows))
    from .plots import plot_axes, plot_schedule_curves, plot_test_metric
    ok_records = [record for record in records if is_ok(record)]
    if suite.selection_only:  # it chooses on validation: plot that
        plot_test_metric(suite, ok_records, os.path.join(output_dir, 'val_metric.png'), split='val')
    else:
        plot_test_metric(suite, ok_records, os.path.join(output_dir, 'test_metric.png'))
    plot_schedule_curves(suite, ok_records, output_dir, os.path.join(output_dir, 'schedule_curves.png'))
    plot_axes(suite, rows, output_dir)
    if suite.report is not None:
        suite.report(output_dir, ok_records, suite)
    log(f'[{suite.name}] wrote {os.path.join(output_dir, "summary.md")} (and summary.csv, plots)')
    return rows
