"""The noise-toy suite: a fair KD / Continuation-KD comparison from an analytic teacher, through the harness."""
import csv
import json
import math
import os

import pytest
import torch

from benchmarks.configs import apply_dotted, read_structure
from benchmarks.harness import plan_suite, run_suite
from benchmarks.suites import build_suite
from benchmarks.suites.noisy_sinusoid import NOISY_SINUSOID_CONFIGS, STUDENT_EPOCHS, TUNING_SEEDS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONTINUATION_KWARGS = ('train', 'criterion', 'kwargs', 'sub_terms', 'continuation_kd', 'criterion', 'kwargs')


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    monkeypatch.chdir(REPO)  # suites name their configs relative to the repository root


def _without_loss(structure):
    structure = dict(structure, train=dict(structure['train']))
    structure['train'].pop('criterion')
    structure['train'].pop('pre_epoch_process', None)
    return structure


def _nested(structure, keys):
    for key in keys:
        structure = structure[key]
    return structure


def test_suite_compares_the_two_methods_on_equal_terms():
    suite = build_suite('noisy_sinusoid')
    assert set(suite.methods) == {'kd', 'continuation_kd'} and len(suite.default_seeds) >= 5
    assert all(spec.teacher_role is None for spec in suite.methods.values())  # the analytic teacher is in the config
    kd, continuation = (read_structure(NOISY_SINUSOID_CONFIGS[name]) for name in ('kd', 'continuation_kd'))
    assert _without_loss(kd) == _without_loss(continuation), 'only the loss may differ between the two methods'
    assert kd['train']['num_epochs'] == STUDENT_EPOCHS
    student = kd['models']['student_model']['kwargs']
    assert (student['input_dim'], student['hidden_dims'], student['num_classes']) == (1, [128, 128], 1)
    teacher = kd['models']['teacher_model']
    assert teacher['weights_in_kwargs'] is True and 'src_ckpt' not in teacher
    for dataset in kd['datasets'].values():  # every split samples the teacher's own function
        assert dataset['init']['kwargs']['function'] == teacher['kwargs']
    loss = _nested(continuation, CONTINUATION_KWARGS)
    assert (loss['objective'], loss['task'], loss['max_temperature'], loss['psi']) == \
        ('annealed_hinge', 'regression', 10, {'ramp': '3/4'})
    assert loss['margin'] == pytest.approx(teacher['kwargs']['noise']['amplitude'] ** 2)  # m = a_n^2


def test_configs_need_no_teacher_run_or_checkpoint(tmp_path):
    from plugins.config_checks import checked_stages
    from plugins.runner import load_config
    for config in NOISY_SINUSOID_CONFIGS.values():
        checked_stages(load_config(config))  # no teacher_ckpt: the analytic teacher is complete
    jobs = plan_suite(build_suite('noisy_sinusoid'), str(tmp_path))
    assert {job.role for job in jobs} == {'student'} and all(job.teacher_ckpt is None for job in jobs)


def test_options_are_checked_and_tuning_uses_its_own_seeds(tmp_path):
    with pytest.raises(ValueError, match=r"option\(s\) \['margin'\]; accepted: \['tuning'\]"):
        build_suite('noisy_sinusoid', {'margin': 0.1})
    with pytest.raises(ValueError, match='option tuning must be true or false'):
        build_suite('noisy_sinusoid', {'tuning': 'maybe'})
    with pytest.raises(ValueError, match='no --quick mode'):
        build_suite('noisy_sinusoid', {'tuning': True}, quick=True)
    tuning = build_suite('noisy_sinusoid', {'tuning': True})
    assert tuning.name == 'noisy_sinusoid_tuning' and tuning.default_seeds == TUNING_SEEDS
    assert not set(TUNING_SEEDS) & set(build_suite('noisy_sinusoid').default_seeds)
    jobs = {job.method: job for job in plan_suite(tuning, str(tmp_path), seeds=[TUNING_SEEDS[0]])}
    assert jobs['kd_e30'].overrides == {'train.num_epochs': 30}
    margin = apply_dotted(read_structure(jobs['continuation_kd_m0'].config), jobs['continuation_kd_m0'].overrides)
    assert _nested(margin, CONTINUATION_KWARGS)['margin'] == 0.0


def _error(model, split, target):
    from plugins.datasets.noisy_sinusoid import noisy_sinusoid_split
    function = read_structure(NOISY_SINUSOID_CONFIGS['kd'])['models']['teacher_model']['kwargs']
    inputs, labels = noisy_sinusoid_split(split, function, target=target).tensors
    with torch.no_grad():
        return torch.mean((model(inputs) - labels) ** 2).item()


def test_quick_suite_reports_both_errors_with_paired_tests_and_draws_figure2(tmp_path):
    from benchmarks.noisy_sinusoid_figure import trained_student
    records = run_suite(build_suite('noisy_sinusoid', quick=True), str(tmp_path), threads=1, log=lambda message: None)
    assert sorted((r['method'], r['seed']) for r in records) == \
        [('continuation_kd', 0), ('continuation_kd', 1), ('kd', 0), ('kd', 1)]
    assert not os.path.exists(tmp_path / 'cache')  # no teacher was trained
    errors = {}
    for record in records:  # recompute both errors from the saved students
        student = trained_student(str(tmp_path), record)
        key = (record['method'], record['seed'])
        errors[key] = (_error(student, 'test', 'clean'), _error(student, 'test', 'teacher'))
        assert record['test']['mse'] == pytest.approx(errors[key][0], rel=1e-4)
    with open(tmp_path / 'noise_errors.csv', encoding='utf-8') as fp:
        rows = {row['method']: row for row in csv.DictReader(fp)}
    for method in ('kd', 'continuation_kd'):
        teacher_errors = [errors[(method, seed)][1] for seed in (0, 1)]
        assert float(rows[method]['teacher_mean']) == pytest.approx(sum(teacher_errors) / 2, rel=1e-4)
    diffs = [errors[('continuation_kd', s)][1] - errors[('kd', s)][1] for s in (0, 1)]
    assert float(rows['continuation_kd']['teacher_diff_mean']) == pytest.approx(sum(diffs) / 2, rel=1e-4, abs=1e-7)
    assert 0 <= float(rows['continuation_kd']['teacher_p_value']) <= 1 and rows['kd']['teacher_p_value'] == ''
    table = (tmp_path / 'noise_errors.md').read_text(encoding='utf-8')
    assert '| teacher (analytic) | - | 0.0450 |' in table and 'MSE to noisy teacher' in table
    run_dir = next(r['run_dir'] for r in records if (r['method'], r['seed']) == ('continuation_kd', 0))
    history = json.loads((tmp_path / run_dir / 'result.json').read_text())['history']
    assert [entry['schedule']['ContinuationKDLoss']['T'] for entry in history] == list(range(10, 0, -1))
    assert [entry['schedule']['ContinuationKDLoss']['psi'] for entry in history][::9] == [0.0, 1.0]
    assert (tmp_path / 'figure2.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_figure_and_table_need_finished_runs(tmp_path):
    from benchmarks.noisy_sinusoid_errors import write_error_table
    from benchmarks.noisy_sinusoid_figure import draw_figure
    suite = build_suite('noisy_sinusoid')
    assert draw_figure(str(tmp_path), []) is None and write_error_table(str(tmp_path), [], suite) is None
    assert not os.listdir(tmp_path)


def test_error_table_pairs_seeds_against_the_baseline(tmp_path):
    from benchmarks.noisy_sinusoid_errors import error_rows, markdown_table
    records = []
    values = {('kd', 0): (0.04, 0.001), ('kd', 1): (0.05, 0.003),
              ('continuation_kd', 0): (0.01, 0.03), ('continuation_kd', 1): (0.03, 0.04)}
    for (method, seed), (clean, teacher) in values.items():
        run_dir = tmp_path / method / str(seed)
        run_dir.mkdir(parents=True)
        (run_dir / 'result.json').write_text(json.dumps({
            'test': {'mse': clean}, 'best_val': teacher, 'extra_tests': {'teacher': {'mse': teacher},
                                                                       'val_clean': {'mse': clean}}}))
        records.append({'method': method, 'seed': seed, 'role': 'student', 'metric': 'mse',
                        'run_dir': f'{method}/{seed}'})
    kd, continuation = error_rows(str(tmp_path), records, order=['kd', 'continuation_kd'])
    assert kd['clean_mean'] == pytest.approx(0.045) and math.isnan(kd['clean_p_value'])
    # differences per seed: clean -0.03, -0.02 (mean -0.025, std 0.00707); teacher 0.029, 0.037
    assert continuation['clean_diff_mean'] == pytest.approx(-0.025)
    assert continuation['clean_diff_std'] == pytest.approx(math.sqrt(2) * 0.005)
    assert continuation['teacher_diff_mean'] == pytest.approx(0.033)
    # paired t = mean / (std / sqrt(n)) = -0.025 / 0.005 = -5 with 1 degree of freedom: p = 2 * atan(1/5) / pi
    assert continuation['clean_p_value'] == pytest.approx(2 * math.atan(1 / 5) / math.pi, rel=1e-6)
    text = markdown_table([kd, continuation], {'clean': 0.045, 'teacher': 0.0}, 'kd')
    assert '| continuation_kd | 2 | 0.0200 ± 0.0141 | -0.0250 ± 0.0071 | 0.126 |' in text
