"""Statistics and tables of the benchmark harness, on hand-made numbers checked against hand computations."""
import math

import pytest

from benchmarks.report import add_reference_comparisons, annotate, csv_report, markdown_report, method_baselines, \
    reference_methods, summarize, sweep_tables
from benchmarks.stats import describe, mean_interval, paired_comparison
from benchmarks.suites.base import MethodSpec, Suite


def test_describe_mean_and_sample_std():
    summary = describe([1.0, 2.0, 3.0, 4.0])
    assert summary['n'] == 4
    assert summary['mean'] == pytest.approx(2.5)
    # sum of squared deviations 2 * (1.5^2 + 0.5^2) = 5, divided by n - 1 = 3
    assert summary['std'] == pytest.approx(math.sqrt(5.0 / 3.0))
    assert math.isnan(describe([7.0])['std']) and describe([7.0])['mean'] == 7.0


def test_paired_t_test_with_three_pairs_matches_the_closed_form():
    method = {0: 3.0, 1: 5.0, 2: 4.0, 9: 100.0}   # seed 9 has no baseline run: it must be ignored
    baseline = {0: 1.0, 1: 2.0, 2: 4.0}
    result = paired_comparison(method, baseline)
    # differences 2, 3, 0: mean 5/3, sample variance ((1/3)^2 + (4/3)^2 + (5/3)^2) / 2 = 7/3
    assert result['n'] == 3
    assert result['mean_diff'] == pytest.approx(5.0 / 3.0)
    assert result['std_diff'] == pytest.approx(math.sqrt(7.0 / 3.0))
    t = (5.0 / 3.0) / (math.sqrt(7.0 / 3.0) / math.sqrt(3.0))
    assert t == pytest.approx(5.0 / math.sqrt(7.0))
    assert result['t'] == pytest.approx(t)
    # Student's t with 2 degrees of freedom: two-sided p = 1 - |t| / sqrt(2 + t^2) = 1 - 5 / sqrt(39)
    assert result['p_value'] == pytest.approx(1.0 - 5.0 / math.sqrt(39.0))


def test_paired_t_test_with_two_pairs_is_a_cauchy_tail():
    result = paired_comparison({0: 2.0, 1: 5.0}, {0: 1.0, 1: 2.0})
    # differences 1, 3: mean 2, std sqrt(2), t = 2 / (sqrt(2) / sqrt(2)) = 2; one degree of freedom is the
    # Cauchy distribution, two-sided p = 1 - (2 / pi) * atan(|t|)
    assert result['t'] == pytest.approx(2.0)
    assert result['p_value'] == pytest.approx(1.0 - 2.0 / math.pi * math.atan(2.0))
    assert result['p_value'] == pytest.approx(0.2951672353008665)


def test_paired_test_is_undefined_for_constant_differences_or_one_pair():
    constant = paired_comparison({0: 2.0, 1: 3.0}, {0: 1.0, 1: 2.0})
    assert constant['mean_diff'] == pytest.approx(1.0) and math.isnan(constant['p_value'])
    assert math.isnan(paired_comparison({0: 2.0}, {0: 1.0})['t'])


def _record(method, seed, test, val, role='student', higher_is_better=True, split='10'):
    return {'suite': 's', 'method': method, 'role': role, 'group': 'main', 'seed': seed, 'teacher': 'teacher',
            'metric': 'accuracy', 'higher_is_better': higher_is_better, 'test': {'accuracy': test}, 'best_val': val,
            'epoch_split': split, 'train_samples_per_s': 100.0 + seed, 'peak_memory_mb': 10.0 * (seed + 1),
            'wall_time_s': 1.0, 'student_params': 310}


def test_summary_rows_pair_each_method_with_the_baseline_by_seed():
    records = [_record('kd', 0, 60.0, 61.0), _record('kd', 1, 70.0, 69.0), _record('kd', 2, 80.0, 79.0),
               _record('annealing_kd', 2, 84.0, 70.0, split='5+5'), _record('annealing_kd', 0, 62.0, 70.0, split='5+5'),
               _record('annealing_kd', 1, 73.0, 70.0, split='5+5'), _record('teacher', 0, 97.0, 98.0, role='teacher')]
    rows = {row['method']: row for row in summarize(records, baseline='kd', order=['kd', 'annealing_kd'])}
    assert list(rows) == ['teacher', 'kd', 'annealing_kd']
    annealing = rows['annealing_kd']
    assert annealing['test_mean'] == pytest.approx((62.0 + 73.0 + 84.0) / 3)
    assert annealing['epoch_split'] == '5+5' and annealing['n'] == 3
    # per-seed differences 2, 3, 4 -> mean 3, std 1, t = 3 / (1 / sqrt(3)), p from the t(2) closed form
    assert annealing['diff_mean'] == pytest.approx(3.0) and annealing['diff_std'] == pytest.approx(1.0)
    t = 3.0 * math.sqrt(3.0)
    assert annealing['p_value'] == pytest.approx(1.0 - t / math.sqrt(2.0 + t * t))
    assert annealing['peak_memory_mb'] == 30.0 and annealing['train_samples_per_s'] == pytest.approx(101.0)
    assert rows['kd']['baseline'] is None and rows['teacher']['baseline'] is None
    table = markdown_report(Suite('s', 'demo', 't.yaml', {'kd': MethodSpec('k.yaml'),
                                                          'annealing_kd': MethodSpec('a.yaml')}), list(rows.values()))
    assert '| annealing_kd | teacher | 5+5 | 3 |' in table and '73.00 ± 11.00' in table
    assert csv_report(list(rows.values())).splitlines()[0].startswith('suite,method,role')


@pytest.mark.parametrize('higher_is_better', [True, False])
def test_sweeps_select_on_validation_not_test(higher_is_better):
    # 'b' has the best test figure but 'a' the best validation figure (in the metric's direction): 'a' is selected.
    good, bad = (90.0, 50.0) if higher_is_better else (0.1, 0.9)
    records = [_record('a', seed, bad, good, higher_is_better=higher_is_better) for seed in (0, 1)] + \
              [_record('b', seed, good, bad, higher_is_better=higher_is_better) for seed in (0, 1)]
    suite = Suite('s', 'demo', 't.yaml', {'a': MethodSpec('a.yaml', sweeps=('sweep',)),
                                          'b': MethodSpec('b.yaml', sweeps=('sweep',))})
    selected = sweep_tables(suite, summarize(records, baseline='kd'))
    assert [(row['method'], chosen) for row, chosen in selected['sweep']] == [('a', True), ('b', False)]


def test_mean_interval_is_the_student_t_interval():
    low, high = mean_interval([1.0, 2.0, 3.0])
    # mean 2, sample std 1, t(0.975, 2 dof) = 4.302652729911275, half-width 4.3027 / sqrt(3)
    assert low == pytest.approx(2.0 - 4.302652729911275 / math.sqrt(3.0))
    assert high == pytest.approx(2.0 + 4.302652729911275 / math.sqrt(3.0))
    assert all(math.isnan(v) for v in mean_interval([5.0]))
    result = paired_comparison({0: 3.0, 1: 5.0, 2: 4.0}, {0: 1.0, 1: 2.0, 2: 4.0})
    half = 4.302652729911275 * math.sqrt(7.0 / 3.0) / math.sqrt(3.0)  # differences 2, 3, 0
    assert (result['ci_low'], result['ci_high']) == (pytest.approx(5 / 3 - half), pytest.approx(5 / 3 + half))


def _diagnosed(record, dead=0, flagged=False, status=None):
    record['diagnostics'] = {'dead_relu': {'dead_units': dead, 'relu_units': 4, 'per_layer': {'2': dead}},
                             'loss_growth': {'max_growth': 2000.0 if flagged else 1.5, 'epoch': 3, 'flagged': flagged}}
    if status:
        record['status'] = status
    return record


def test_failed_runs_are_counted_and_left_out_and_diagnostics_are_summed():
    records = [_diagnosed(_record('kd', seed, 80.0 + seed, 80.0)) for seed in range(3)] + \
              [_diagnosed(_record('a', 0, 81.0, 80.0), dead=1), _diagnosed(_record('a', 1, 83.0, 80.0), flagged=True),
               {'method': 'a', 'seed': 2, 'role': 'student', 'status': 'failed', 'error': 'loss became nan'},
               _diagnosed(_record('a', 2, 0.0, 0.0), status='failed')]
    rows = {row['method']: row for row in summarize(records, baseline='kd', order=['kd', 'a'])}
    a = rows['a']
    assert (a['n'], a['failed'], a['seeds']) == (2, 2, [0, 1])
    # seeds 0 and 1 only: 81 - 80 and 83 - 81
    assert a['test_mean'] == pytest.approx(82.0) and a['diff_mean'] == pytest.approx(1.5)
    assert (a['dead_unit_runs'], a['dead_units'], a['loss_growth_flags'], a['relu_runs']) == (1, 1, 1, 2)
    table = markdown_report(Suite('s', 'demo', 't.yaml', {'kd': MethodSpec('k.yaml'), 'a': MethodSpec('a.yaml')}),
                            list(rows.values()))
    assert '| a | teacher | 10 | 2 | 2 |' in table and '1/2 (1 units) ⚠' in table
    assert 'Failed runs are excluded from every statistic' in table
    only_failed = summarize([records[5]], baseline='kd')
    assert only_failed[0]['n'] == 0 and only_failed[0]['failed'] == 1


def _axes_suite():
    methods = {'kd': MethodSpec('k.yaml'), 'a': MethodSpec('a.yaml'),
               'scratch': MethodSpec('s.yaml', teacher_role=None),
               'kd_w2': MethodSpec('k.yaml', family='kd', axes=(('width', 2),)),
               'a_w2': MethodSpec('a.yaml', family='a', axes=(('width', 2),)),
               'kd_noisy': MethodSpec('k.yaml', family='kd', axes=(('noise', 0.25),)),
               'a_noisy': MethodSpec('a.yaml', family='a', axes=(('noise', 0.25),))}
    axes = {'width': {'reference': 4, 'label': 'units', 'against_reference': False},
            'noise': {'reference': 0.0, 'label': 'noise', 'against_reference': True}}
    return Suite('s', 'demo', 't.yaml', methods, axes=axes)


def test_axes_pair_each_method_with_kd_at_its_point_and_with_itself_at_the_reference():
    suite = _axes_suite()
    assert method_baselines(suite) == {'kd': 'kd', 'a': 'kd', 'scratch': 'kd', 'kd_w2': 'kd_w2', 'a_w2': 'kd_w2',
                                       'kd_noisy': 'kd_noisy', 'a_noisy': 'kd_noisy'}
    assert reference_methods(suite, 'noise') == {'kd_noisy': 'kd', 'a_noisy': 'a'}
    values = {'kd': 90.0, 'a': 91.0, 'scratch': 88.0, 'kd_w2': 70.0, 'a_w2': 75.0, 'kd_noisy': 86.0, 'a_noisy': 89.0}
    records = [_record(m, seed, v + (seed if m == 'a_noisy' else 0), v) for m, v in values.items() for seed in (0, 1)]
    for record in records:
        record['teacher'] = None if record['method'] == 'scratch' else 'teacher'
    rows = annotate(suite, summarize(records, order=list(suite.methods), baselines=method_baselines(suite)))
    add_reference_comparisons(suite, rows)
    by = {row['method']: row for row in rows}
    assert by['a_w2']['baseline'] == 'kd_w2' and by['a_w2']['diff_mean'] == pytest.approx(5.0)
    assert by['kd_noisy']['reference_method'] == 'kd' and by['kd_noisy']['drop_mean'] == pytest.approx(-4.0)
    assert by['a_noisy']['drop_mean'] == pytest.approx(-1.5) and by['a_noisy']['diff_mean'] == pytest.approx(3.5)
    assert 'reference_method' not in by['a_w2']  # the width axis is not compared with its reference
    table = markdown_report(suite, rows)
    assert '## Axis: width (units)' in table and '### width 2' in table and '## Axis: noise (noise)' in table
    assert '| a | 2 | 0 | 91.00 ± 0.00 | 89.50 ± 0.71 | -1.50 [-7.85, +4.85] |' in table
    assert 'Not affected (no teacher): scratch' in table
