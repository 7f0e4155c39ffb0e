"""Tables of a suite's results: mean +- std per method over seeds, paired difference against the baseline.

``summary.md`` and ``summary.csv`` in the results directory, both written atomically. The primary metric and
its direction come from the runs (``result['metric']``, ``higher_is_better``). Selection is on validation:
the "best val" column of an ablation sweep marks the member with the best mean validation metric; test
figures are reported for all members, never used to choose.
"""
import csv
import io
import math
import os

from plugins.checkpoint import atomic_write_text

from .stats import describe, paired_comparison

__all__ = ['summarize', 'sweep_tables', 'markdown_report', 'csv_report', 'write_report']

CSV_FIELDS = ['suite', 'method', 'role', 'group', 'teacher', 'epoch_split', 'n', 'metric', 'higher_is_better',
              'val_mean', 'val_std', 'test_mean', 'test_std', 'baseline', 'diff_mean', 'diff_std', 't', 'p_value',
              'train_samples_per_s', 'peak_memory_mb', 'wall_time_s', 'student_params']


def _by_method(records):
    methods = {}
    for record in records:
        methods.setdefault(record['method'], []).append(record)
    return methods


def summarize(records, baseline='kd', order=None):
    """One row per method (teacher and TA first), with seed statistics and the paired test against ``baseline``."""
    methods = _by_method(records)
    base = {r['seed']: r['test'][r['metric']] for r in methods.get(baseline, [])}
    names = [m for m in ('teacher', 'ta') if m in methods] + \
        [m for m in (order or sorted(methods)) if m in methods and m not in ('teacher', 'ta')]
    rows = []
    for method in names:
        runs = sorted(methods[method], key=lambda r: r['seed'])
        metric = runs[0]['metric']
        test = {r['seed']: r['test'][metric] for r in runs}
        val, score = describe(r['best_val'] for r in runs), describe(test.values())
        row = {
            'suite': runs[0]['suite'], 'method': method, 'role': runs[0]['role'], 'group': runs[0].get('group'),
            'teacher': runs[0].get('teacher'), 'epoch_split': ' / '.join(sorted({r['epoch_split'] for r in runs})),
            'n': score['n'], 'seeds': sorted(test), 'metric': metric, 'higher_is_better': runs[0]['higher_is_better'],
            'val_mean': val['mean'], 'val_std': val['std'], 'test_mean': score['mean'], 'test_std': score['std'],
            'baseline': None, 'diff_mean': math.nan, 'diff_std': math.nan, 't': math.nan, 'p_value': math.nan,
            'train_samples_per_s': describe(r['train_samples_per_s'] or math.nan for r in runs)['mean'],
            'peak_memory_mb': max(r['peak_memory_mb'] for r in runs),
            'wall_time_s': describe(r['wall_time_s'] for r in runs)['mean'],
            'student_params': runs[0]['student_params'],
        }
        if runs[0]['role'] == 'student' and base and method != baseline:
            comparison = paired_comparison(test, base)
            row.update(baseline=baseline, diff_mean=comparison['mean_diff'], diff_std=comparison['std_diff'],
                       t=comparison['t'], p_value=comparison['p_value'])
        rows.append(row)
    return rows


def sweep_tables(suite, rows):
    """{sweep name: [(row, selected)]}: the members of each ablation sweep, the best mean validation one selected."""
    by_method = {row['method']: row for row in rows}
    tables = {}
    for method, spec in suite.methods.items():
        for sweep in spec.sweeps:
            if method in by_method:
                tables.setdefault(sweep, []).append(by_method[method])
    selected = {}
    for sweep, members in tables.items():
        sign = 1 if members[0]['higher_is_better'] else -1
        best = max(members, key=lambda row: sign * row['val_mean'])
        selected[sweep] = [(row, row is best) for row in members]
    return selected


def _num(value, digits=2):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 'n/a'
    return f'{value:.{digits}f}'


def _pm(mean, std, digits=2):
    return _num(mean, digits) if math.isnan(std) else f'{_num(mean, digits)} ± {_num(std, digits)}'


def _metric_digits(rows):
    """Decimals for a metric column: 2 for percentages and other large figures, 4 for small ones (MSE)."""
    scale = max((abs(row['test_mean']) for row in rows if not math.isnan(row['test_mean'])), default=0.0)
    return 2 if scale >= 10 else 4


def _p(value):
    if value is None or math.isnan(value):
        return 'n/a'
    return '< 0.001' if value < 0.001 else f'{value:.3f}'


def _markdown_table(header, lines):
    out = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join('---' for _ in header) + '|']
    out += ['| ' + ' | '.join(str(cell) for cell in line) + ' |' for line in lines]
    return '\n'.join(out)


def markdown_report(suite, rows, command=None):
    """The Markdown summary: the main table, one table per ablation sweep, and how to read them."""
    if not rows:
        return f'# {suite.name}\n\nNo finished runs.\n'
    metric = rows[-1]['metric']
    direction = 'higher is better' if rows[-1]['higher_is_better'] else 'lower is better'
    notes = {name: spec.note for name, spec in suite.methods.items()}
    digits = _metric_digits(rows)
    lines = []
    for row in rows:
        lines.append([
            row['method'], row['teacher'] or '-', row['epoch_split'], row['n'],
            _pm(row['val_mean'], row['val_std'], digits), _pm(row['test_mean'], row['test_std'], digits),
            '-' if row['baseline'] is None else _pm(row['diff_mean'], row['diff_std'], digits),
            '-' if row['baseline'] is None else _p(row['p_value']),
            _num(row['train_samples_per_s'], 0), _num(row['peak_memory_mb'], 0), _num(row['wall_time_s'], 1),
            row['student_params']])
    header = ['method', 'teacher', 'epochs (stages)', 'seeds', f'val {metric}', f'test {metric}',
              f'Δ test vs {suite.baseline}', 'p (paired t)', 'train samples/s', 'peak mem MB', 'wall s/run', 'params']
    text = [f'# Benchmark: {suite.name}', '', suite.description, '']
    if command:
        text += [f'Command: `{command}`', '']
    text += [f'Metric: {metric} ({direction}); mean ± sample std over seeds {rows[-1]["seeds"]}.', '',
             _markdown_table(header, lines), '']
    sweeps = sweep_tables(suite, rows)
    for sweep, members in sweeps.items():
        text += [f'## Ablation: {sweep}', '',
                 _markdown_table(['method', 'setting', f'val {metric}', f'test {metric}', 'selected on val'],
                                 [[row['method'], notes.get(row['method'], ''),
                                  _pm(row['val_mean'], row['val_std'], digits),
                                  _pm(row['test_mean'], row['test_std'], digits), '✓' if chosen else '']
                                  for row, chosen in members]), '']
    text += [
        '## How to read this', '',
        f'- Every student row trained on the same seeds, data split and epoch budget; "epochs (stages)" shows how '
        f'a multi-stage method split it (Annealing-KD: Stage I + Stage II). Teacher and TA rows are the models the '
        f'students learn from (trained once per seed and reused).',
        f'- "val" is the best validation {metric} of the run (the checkpoint kept); "test" is that checkpoint on '
        f'the test split, which is never used for any choice.',
        f'- "Δ test vs {suite.baseline}" is the mean ± std over seeds of the per-seed difference with '
        f'{suite.baseline} (same seed = same student initialisation and same teacher; the split is fixed for '
        f'every seed); "p" is the two-sided paired '
        f't-test (scipy.stats.ttest_rel). With 5 seeds, p < 0.05 needs a difference well above its spread.',
        '- Ablation tables: the "selected on val" mark is the best mean validation figure of the sweep.',
        '- Throughput is training samples per second over the training epochs of one run (validation excluded); '
        'peak memory is the peak RSS of the process during the run on CPU (it includes the Python / torch runtime, '
        'about 0.8 GB here) or the peak allocated CUDA memory, the maximum over seeds.',
        '- Plots: test_metric.png (test metric per method, mean ± std and each seed), schedule_curves.png '
        '(temperature / lambda schedule and validation curves per epoch, mean over seeds).', '']
    return '\n'.join(text)


def csv_report(rows):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction='ignore', lineterminator='\n')
    writer.writeheader()
    for row in rows:
        writer.writerow({key: ('' if isinstance(value, float) and math.isnan(value) else value)
                         for key, value in row.items()})
    return buffer.getvalue()


def write_report(suite, records, output_dir, command=None, log=print):
    """Writes summary.md, summary.csv and the plots; returns the rows."""
    rows = summarize(records, baseline=suite.baseline, order=list(suite.methods))
    atomic_write_text(os.path.join(output_dir, 'summary.md'), markdown_report(suite, rows, command))
    atomic_write_text(os.path.join(output_dir, 'summary.csv'), csv_report(rows))
    from .plots import plot_schedule_curves, plot_test_metric
    plot_test_metric(suite, records, os.path.join(output_dir, 'test_metric.png'))
    plot_schedule_curves(suite, records, output_dir, os.path.join(output_dir, 'schedule_curves.png'))
    if suite.report is not None:
        suite.report(output_dir, records, suite)
    log(f'[{suite.name}] wrote {os.path.join(output_dir, "summary.md")} (and summary.csv, plots)')
    return rows
