"""The Markdown of ``summary.md``: headline, one table per value of each suite axis, ablations, cost, notes."""
import math

from plugins.diagnostics import GROWTH_THRESHOLD

from .report import axis_point, axis_values, rows_at, sweep_tables
from .stats import half_width_factor

__all__ = ['render_summary', 'diff_cell']

HEADLINE_HEADER = ['method', 'teacher', 'epochs (stages)', 'seeds', 'failed', 'val {m}', 'test {m}',
                   'Δ test vs {b} [95% CI]', 'p (paired t)', 'dead-unit runs', 'loss-growth flags']


def _num(value, digits=2):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 'n/a'
    return f'{value:.{digits}f}'


def _pm(mean, std, digits=2):
    return _num(mean, digits) if std is None or math.isnan(std) else f'{_num(mean, digits)} ± {_num(std, digits)}'


def _p(value):
    if value is None or math.isnan(value):
        return 'n/a'
    return '< 0.001' if value < 0.001 else f'{value:.3f}'


def diff_cell(row, label='diff', digits=2):
    """'+1.23 [0.45, 2.01]': a paired mean difference and its 95 % t-interval."""
    mean = row.get(f'{label}_mean', math.nan)
    if mean is None or math.isnan(mean):
        return 'n/a'
    low, high = row.get(f'{label}_ci_low', math.nan), row.get(f'{label}_ci_high', math.nan)
    interval = '' if math.isnan(low) else f' [{low:+.{digits}f}, {high:+.{digits}f}]'
    return f'{mean:+.{digits}f}{interval}'


def _dead_cell(row):
    """'runs with a dead unit / runs with ReLUs', the dead units in all, and a ⚠ for students (a teacher's wide
    layers losing a few of hundreds of units is ordinary; a small student losing one is not)."""
    if not row['relu_runs']:
        return 'n/a'
    cell = f"{row['dead_unit_runs']}/{row['relu_runs']}"
    if row['dead_unit_runs']:
        cell += f" ({row['dead_units']} units)" + (' ⚠' if row['role'] == 'student' else '')
    return cell


def _growth_cell(row):
    if not row['diagnosed_runs']:
        return 'n/a'
    return str(row['loss_growth_flags']) + (' ⚠' if row['loss_growth_flags'] else '')


def _table(header, lines):
    out = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join('---' for _ in header) + '|']
    out += ['| ' + ' | '.join(str(cell) for cell in line) + ' |' for line in lines]
    return '\n'.join(out)


def _digits(rows):
    """Decimals for a metric column: 2 for percentages and other large figures, 4 for small ones (MSE)."""
    scale = max((abs(row['test_mean']) for row in rows if not math.isnan(row['test_mean'])), default=0.0)
    return 2 if scale >= 10 else 4


def _headline_line(row, digits):
    compared = row['baseline'] is not None
    return [row['method'], row['teacher'] or '-', row['epoch_split'], row['n'], row['failed'],
            _pm(row['val_mean'], row['val_std'], digits), _pm(row['test_mean'], row['test_std'], digits),
            diff_cell(row, digits=digits) if compared else '-', _p(row['p_value']) if compared else '-',
            _dead_cell(row), _growth_cell(row)]


def _headline_table(rows, metric, baseline, digits):
    header = [cell.format(m=metric, b=baseline) for cell in HEADLINE_HEADER]
    return _table(header, [_headline_line(row, digits) for row in rows])


def _at_reference(suite, rows):
    reference = {axis: settings['reference'] for axis, settings in (suite.axes or {}).items()}
    return [row for row in rows if row['method'] not in suite.methods or
            axis_point(suite.methods[row['method']], suite) == reference]


def _pivot(suite, rows, axis, cell, with_params=False):
    """Families (rows) by the axis's values (columns); a family run at one value only (TAKD, an ablation) is left
    to the per-value tables, unless the axis has a single value."""
    values = axis_values(suite, axis)
    families, table = [], {}
    for value in values:
        for row in rows_at(suite, rows, axis, value):
            if row['family'] not in families:
                families.append(row['family'])
            table[(row['family'], value)] = row
    if len(values) > 1:
        families = [f for f in families if sum((f, value) in table for value in values) > 1]
    lines = [[family] + [cell(table[(family, value)]) if (family, value) in table else '-' for value in values]
             for family in families]
    if with_params:
        params = [sorted({table[(f, value)]['student_params'] for f in families if (f, value) in table})
                  for value in values]
        lines.append(['*student parameters*'] + [', '.join(str(p) for p in found if p) or '-' for found in params])
    return _table(['method'] + [f'{axis} {value}' for value in values], lines)


def _width_section(suite, rows, axis, metric, digits):
    settings = suite.axes[axis]
    text = [f'## Axis: {axis} ({settings["label"]})', '',
            f'Test {metric}, mean ± std over seeds:', '',
            _pivot(suite, rows, axis, lambda row: _pm(row['test_mean'], row['test_std'], digits), True), '',
            f'Paired difference of test {metric} against {suite.baseline} at the same {axis} [95% CI] (p):', '',
            _pivot(suite, rows, axis, lambda row: '-' if row['baseline'] is None else
                   f"{diff_cell(row, digits=digits)} ({_p(row['p_value'])})"), '']
    for value in axis_values(suite, axis):
        members = rows_at(suite, rows, axis, value)
        if members:
            params = sorted({row['student_params'] for row in members if row['student_params']})
            text += [f'### {axis} {value}' + (f' ({", ".join(map(str, params))} parameters)' if params else ''), '',
                     _headline_table(members, metric, suite.baseline, digits), '']
    return text


def _noise_line(row, clean, digits):
    return [row['family'], row['n'], row['failed'], _pm(clean['test_mean'], clean['test_std'], digits),
            _pm(row['test_mean'], row['test_std'], digits), diff_cell(row, 'drop', digits), _p(row.get('drop_p')),
            diff_cell(row, digits=digits) if row['baseline'] else '-', _p(row['p_value']) if row['baseline'] else '-',
            _dead_cell(row), _growth_cell(row)]


def _reference_section(suite, rows, axis, metric, digits):
    settings, by_method = suite.axes[axis], {row['method']: row for row in rows}
    if not any(row.get('reference_method') for row in rows):
        return []
    text = [f'## Axis: {axis} ({settings["label"]})', '']
    header = ['method', 'seeds', 'failed', f'test at {axis} {settings["reference"]}', f'test at {axis} {{v}}',
              'change [95% CI]', 'p (paired t)', f'Δ test vs {suite.baseline} [95% CI]', 'p (paired t)',
              'dead-unit runs', 'loss-growth flags']
    for value in axis_values(suite, axis):
        if value == settings['reference']:
            continue
        lines = [_noise_line(row, by_method[row['reference_method']], digits)
                 for row in rows_at(suite, rows, axis, value) if row.get('reference_method')]
        untouched = [row['method'] for row in rows_at(suite, rows, axis, settings['reference'])
                     if row['role'] == 'student' and row['teacher'] is None]
        text += [f'### {axis} {value}', '', _table([h.replace('{v}', str(value)) for h in header], lines), '',
                 '"change" is the per-seed difference with the same method at the reference value (same seed, same '
                 'student initialisation, same teacher before corruption).', '']
        if untouched:
            text += [f'Not affected (no teacher): {", ".join(untouched)}; see the headline.', '']
    return text


def _cost_table(rows):
    lines = [[row['method'], row['epoch_split'], _num(row['train_samples_per_s'], 0), _num(row['peak_memory_mb'], 0),
              _num(row['wall_time_s'], 1), row['student_params']] for row in rows]
    return _table(['method', 'epochs (stages)', 'train samples/s', 'peak mem MB', 'wall s/run', 'params'], lines)


def _sweep_sections(suite, rows, metric, digits):
    notes, text = {name: spec.note for name, spec in suite.methods.items()}, []
    for sweep, members in sweep_tables(suite, rows).items():
        if len(members) < 2:  # e.g. the default run of a suite whose ablations are an option
            continue
        text += [f'## Ablation: {sweep}', '',
                 _table(['method', 'setting', f'val {metric}', f'test {metric}', 'selected on val'],
                        [[row['method'], notes.get(row['method'], ''), _pm(row['val_mean'], row['val_std'], digits),
                          _pm(row['test_mean'], row['test_std'], digits), '✓' if chosen else '']
                         for row, chosen in members]), '']
    return text


def _notes(suite, metric, seeds):
    baseline = suite.baseline
    return [
        '## How to read this', '',
        '- Every student row trained on the same seeds, data split and epoch budget; "epochs (stages)" shows how a '
        'multi-stage method split it (Annealing-KD: Stage I + Stage II). Teacher and TA rows are the models the '
        'students learn from (trained once per seed and reused).',
        f'- "test" is the test {metric} of the checkpoint chosen on validation (the best validation epoch of the '
        f'last stage); the test split is never used for any choice. "val" is that best validation figure: a '
        f'maximum over epochs, so it is biased upward, and more so for methods with more epochs in their last '
        f'stage; compare methods on test.',
        f'- "Δ test vs {baseline}" is the mean over seeds of the per-seed difference with {baseline} at the same '
        f'point of every axis (same seed = same student initialisation and same teacher; the split is fixed), with '
        f'its 95% Student-t confidence interval; "p" is the two-sided paired t-test (scipy.stats.ttest_rel). An '
        f'interval that contains 0 is no evidence of a difference. With {len(seeds)} seeds the interval\'s '
        f'half-width is about {half_width_factor(len(seeds)):.2f} x the std of the differences.',
        '- "failed": runs that stopped (non-finite loss, error); they are left out of every statistic, so a method '
        'with failures is averaged over fewer seeds.',
        '- "dead-unit runs": runs whose reported student has at least one hidden ReLU unit that is zero on every '
        'training sample (a smaller network in effect); ⚠ marks a method with such runs.',
        f'- "loss-growth flags": runs whose mean training loss grew {GROWTH_THRESHOLD:.0f}-fold or more within a stage '
        '(plugins/diagnostics.py); ⚠ marks them.',
        '- Throughput is training samples per second over the training epochs of one run (validation excluded); '
        'peak memory is the peak RSS of the process during the run on CPU (it includes the Python / torch runtime) '
        'or the peak allocated CUDA memory, the maximum over seeds; both depend on the machine\'s load.', '']


def render_summary(suite, rows, command=None):
    """The whole summary.md of ``suite`` from the rows of :func:`benchmarks.report.summarize`."""
    ok = [row for row in rows if row['n']]
    if not ok:
        return f'# {suite.name}\n\nNo finished runs.\n'
    metric, higher = ok[-1]['metric'], ok[-1]['higher_is_better']
    seeds = sorted({seed for row in ok for seed in row['seeds']})
    digits = _digits(ok)
    text = [f'# Benchmark: {suite.name}', '', suite.description, '']
    if command:
        text += [f'Command: `{command}`', '']
    headline = _at_reference(suite, rows)
    reference = ', '.join(f'{axis} {s["reference"]}' for axis, s in (suite.axes or {}).items())
    text += [f'Metric: {metric} ({"higher" if higher else "lower"} is better); mean ± sample std over the seeds '
             f'{seeds}.', '', '## Headline' + (f' ({reference})' if reference else ''), '',
             _headline_table(headline, metric, suite.baseline, digits), '']
    if any(row['failed'] for row in rows):
        text += ['Failed runs are excluded from every statistic (see "failed").', '']
    for axis, settings in (suite.axes or {}).items():
        section = _reference_section if settings.get('against_reference') else _width_section
        text += section(suite, rows, axis, metric, digits)
    text += _sweep_sections(suite, rows, metric, digits)
    text += ['## Cost', '', _cost_table(ok), '']
    return '\n'.join(text + _notes(suite, metric, seeds))
