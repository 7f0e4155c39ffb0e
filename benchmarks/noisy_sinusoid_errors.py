"""The noise toy's two errors per student, over seeds, with paired tests: ``noise_errors.md`` and ``.csv``.

Each run's error to the CLEAN signal is its test metric (in the ledger and the main tables); its error to the
NOISY teacher on the same grid is ``extra_tests['teacher']`` in the run's ``result.json``, which the ledger does not
carry, so it is read from there. Both are compared with the suite's baseline per seed (paired t-test,
:func:`benchmarks.stats.paired_comparison`). The analytic teacher's own errors head the table. The selection runs
(``tuning``) show the same two errors at the VALIDATION inputs instead (``VALIDATION_ERRORS``): the test grid is
never read for a choice.
"""
import csv
import io
import json
import math
import os

import torch

from plugins.atomic_files import atomic_write_text

from .configs import apply_dotted, read_structure
from .stats import describe, paired_comparison

__all__ = ['TEST_ERRORS', 'VALIDATION_ERRORS', 'run_errors', 'teacher_errors', 'error_rows', 'write_error_table',
           'TABLE_NAME']

TABLE_NAME = 'noise_errors'
ERROR_LABELS = {'clean': 'MSE to clean signal', 'teacher': 'MSE to noisy teacher',
                'val_clean': 'val MSE to clean signal', 'val_teacher': 'val MSE to noisy teacher'}
TEST_ERRORS = ('clean', 'teacher')  # on the test grid
VALIDATION_ERRORS = ('val_clean', 'val_teacher')  # at the validation inputs
_STATS = ('mean', 'std', 'diff_mean', 'diff_std', 'p_value')


def run_errors(output_dir: str, record: dict) -> dict:
    """The MSEs of one finished run's best checkpoint to the clean signal and to the noisy teacher, on the test
    grid ('clean', 'teacher') and at the validation inputs ('val_clean', 'val_teacher')."""
    with open(os.path.join(output_dir, record['run_dir'], 'result.json'), 'r', encoding='utf-8') as fp:
        result = json.load(fp)
    metric = record['metric']
    return {'clean': result['test'][metric], 'teacher': result['extra_tests']['teacher'][metric],
            'val_clean': result['extra_tests']['val_clean'][metric], 'val_teacher': result['best_val']}


def run_structure(record: dict) -> dict:
    """The run's config as plain data, with the run's overrides applied."""
    return apply_dotted(read_structure(record['config']), record.get('overrides'))


@torch.no_grad()
def teacher_errors(structure: dict) -> dict:
    """The analytic teacher's MSE to the clean signal and to itself on the test grid of ``structure``'s config."""
    from plugins.datasets.noisy_sinusoid import noisy_sinusoid_split
    from plugins.runner import build_model
    teacher = build_model(structure['models']['teacher_model'], 'cpu')
    function = structure['models']['teacher_model']['kwargs']
    inputs, clean = noisy_sinusoid_split('test', function, target='clean').tensors
    error = torch.mean((teacher(inputs) - clean) ** 2).item()
    val_inputs, val_clean = noisy_sinusoid_split('val', function, target='clean').tensors
    val_error = torch.mean((teacher(val_inputs) - val_clean) ** 2).item()
    return {'clean': error, 'teacher': 0.0, 'val_clean': val_error, 'val_teacher': 0.0}


def error_rows(output_dir: str, records: list, baseline: str = 'kd', order: list = None,
               errors: tuple = TEST_ERRORS) -> list:
    """One row per student method: each of ``errors``' mean and std over seeds, and its paired difference to
    ``baseline``."""
    by_method = {}
    for record in records:
        if record['role'] == 'student':
            by_method.setdefault(record['method'], {})[record['seed']] = run_errors(output_dir, record)
    base = by_method.get(baseline, {})
    rows = []
    for method in [m for m in (order or sorted(by_method)) if m in by_method]:
        runs = by_method[method]
        row = {'method': method, 'n': len(runs), 'seeds': sorted(runs)}
        for error in errors:
            values = {seed: run[error] for seed, run in runs.items()}
            summary = describe(values.values())
            row.update({f'{error}_mean': summary['mean'], f'{error}_std': summary['std'],
                        f'{error}_diff_mean': math.nan, f'{error}_diff_std': math.nan, f'{error}_p_value': math.nan})
            if method != baseline and base:
                comparison = paired_comparison(values, {seed: run[error] for seed, run in base.items()})
                row.update({f'{error}_diff_mean': comparison['mean_diff'], f'{error}_diff_std': comparison['std_diff'],
                            f'{error}_p_value': comparison['p_value']})
        rows.append(row)
    return rows


def _cell(mean, std=math.nan):
    if math.isnan(mean):
        return '-'
    return f'{mean:.4f}' if math.isnan(std) else f'{mean:.4f} ± {std:.4f}'


def _p(value):
    return '-' if math.isnan(value) else ('< 0.001' if value < 0.001 else f'{value:.3f}')


def markdown_table(rows: list, teacher: dict, baseline: str, errors: tuple = TEST_ERRORS) -> str:
    """The errors table with the teacher's row first, and how to read it."""
    header = ['method', 'seeds']
    for error in errors:
        header += [ERROR_LABELS[error], f'Δ vs {baseline}', 'p']
    lines = [['teacher (analytic)', '-'] + [cell for error in errors for cell in (_cell(teacher[error]), '-', '-')]]
    for row in rows:
        line = [row['method'], row['n']]
        for error in errors:
            line += [_cell(row[f'{error}_mean'], row[f'{error}_std']),
                     _cell(row[f'{error}_diff_mean'], row[f'{error}_diff_std']), _p(row[f'{error}_p_value'])]
        lines.append(line)
    text = ['# Noise toy: errors to the clean signal and to the noisy teacher', '',
            '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    text += ['| ' + ' | '.join(str(cell) for cell in line) + ' |' for line in lines]
    where = 'the 1,000-point test grid' if errors == TEST_ERRORS else 'the 1,000 validation inputs'
    text += ['', f'Mean ± sample std over seeds of the best-validation checkpoint on {where}; Δ is the mean ± std '
             f'of the per-seed difference with {baseline} and p the paired t-test (scipy ttest_rel). A student '
             f'that copies the noise has a small MSE to the teacher and an MSE to the clean signal near the '
             f'teacher\'s own; a noise-robust one the reverse.', '']
    return '\n'.join(text)


def write_error_table(output_dir: str, records: list, suite, errors: tuple = TEST_ERRORS) -> list:
    """Writes ``noise_errors.md`` and ``noise_errors.csv`` (atomically) and returns the rows; None without runs."""
    students = [r for r in records if r['role'] == 'student']
    if not students:
        return None
    rows = error_rows(output_dir, students, baseline=suite.baseline, order=list(suite.methods), errors=errors)
    teacher = teacher_errors(run_structure(students[0]))
    atomic_write_text(os.path.join(output_dir, f'{TABLE_NAME}.md'),
                      markdown_table(rows, teacher, suite.baseline, errors))
    buffer = io.StringIO()
    fields = ['method', 'n', 'seeds'] + [f'{error}_{stat}' for error in errors for stat in _STATS]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator='\n')
    writer.writeheader()
    for row in rows:
        writer.writerow({key: ('' if isinstance(value, float) and math.isnan(value) else value)
                         for key, value in row.items()})
    atomic_write_text(os.path.join(output_dir, f'{TABLE_NAME}.csv'), buffer.getvalue())
    return rows
