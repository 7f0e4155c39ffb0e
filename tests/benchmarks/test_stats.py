"""Statistics and tables of the benchmark harness, on hand-made numbers checked against hand computations."""
import math

import pytest

from benchmarks.report import csv_report, markdown_report, summarize, sweep_tables
from benchmarks.stats import describe, paired_comparison
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
