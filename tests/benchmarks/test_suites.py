"""Suite registry, the digits / sinusoid suites' fairness rules, config reading and epoch budgets."""
import os

import pytest
import torch

from benchmarks.configs import apply_dotted, budget_overrides, config_hash, read_structure, stage_epochs
from benchmarks.harness import HarnessError, plan_suite
from benchmarks.suites import SUITES, SuiteError, build_suite
from plugins.datasets.sinusoid import sinusoid_function, sinusoid_split

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    monkeypatch.chdir(REPO)  # suites name their configs relative to the repository root


def _mlp_params(model):
    widths = [model['kwargs']['input_dim']] + list(model['kwargs']['hidden_dims']) + [model['kwargs']['num_classes']]
    return sum(a * b + b for a, b in zip(widths, widths[1:]))


def test_unknown_suite_lists_the_valid_ones():
    with pytest.raises(SuiteError) as error:
        build_suite('nope')
    for name in ('digits', 'sinusoid', 'cifar10', 'cifar100', 'glue'):
        assert name in str(error.value)


def test_a_registered_suite_without_its_module_says_so(monkeypatch):
    monkeypatch.setitem(SUITES, 'future', ('.not_written_yet', 'build_future'))
    with pytest.raises(SuiteError, match=r'benchmarks/suites/not_written_yet\.py is not in this checkout'):
        build_suite('future')


def test_digits_suite_is_fair_and_has_the_required_capacity_gap():
    suite = build_suite('digits')
    assert len(suite.default_seeds) >= 10
    assert set(suite.methods) >= {'scratch', 'kd', 'takd', 'annealing_kd', 'continuation_kd', 'kd_noise_mitigation'}
    assert 'annealing_kd_tau1' in build_suite('digits', {'ablations': True}).methods
    teacher = _mlp_params(read_structure(suite.teacher_config)['models']['model'])
    ta = _mlp_params(read_structure(suite.ta_config)['models']['student_model'])
    assert teacher == 85002 and ta == 4810
    datasets, widths, plans = [], {}, plan_suite(suite, 'unused-output-dir', seeds=[0])
    by_method = {job.method: job for job in plans if job.role == 'student'}
    for name, spec in suite.methods.items():
        structure = apply_dotted(read_structure(spec.config), spec.overrides)  # every override hits a real key
        models = structure['models']
        student = models.get('student_model', models.get('model'))
        widths.setdefault(spec.family, set()).add(student['kwargs']['hidden_dims'][0])
        assert _mlp_params(student) < ta < teacher and teacher >= 10 * _mlp_params(student)
        datasets.append(structure['datasets'])
        # every student spends the same budget, however many stages it has
        assert sum(budget_overrides(structure, suite.student_epochs).values()) == suite.student_epochs == 50
        assert sum(v for k, v in by_method[name].overrides.items() if k.endswith('num_epochs')) == 50
        assert dict(spec.axes)['width'] == student['kwargs']['hidden_dims'][0]
    assert all(d == datasets[0] for d in datasets), 'every method must see the same splits'
    for family in ('scratch', 'kd', 'annealing_kd', 'continuation_kd'):
        assert len(widths[family]) >= 4 and 4 in widths[family], family
    assert widths['takd'] == {4} and _mlp_params({'kwargs': {'input_dim': 64, 'hidden_dims': [4],
                                                             'num_classes': 10}}) == 310
    assert suite.methods['takd'].teacher_role == 'ta' and suite.methods['scratch'].teacher_role is None
    noisy = [name for name, spec in suite.methods.items() if dict(spec.axes)['teacher_noise'] > 0]
    assert sorted(noisy) == ['annealing_kd_noisy', 'continuation_kd_noisy', 'kd_noise_mitigation_noisy', 'kd_noisy']
    for name in noisy:  # the corruption is in the data and a teacher wrapper, never in the losses
        overrides = suite.methods[name].overrides
        assert {key.rsplit('.', 1)[-1] for key in overrides} == {'dataset_wrapper', 'teacher'}
        assert overrides[[k for k in overrides if k.endswith('.teacher')][0]]['auxiliary_model_wrapper'][
            'key'] == 'NoisyTeacherWrapper'


def test_budget_split_keeps_the_stage_proportions_and_the_total():
    structure = read_structure('yaml_configs/digits/annealing_kd/mlp4_from_mlp256.yaml')
    assert stage_epochs(structure) == [('train.stage1.num_epochs', 25), ('train.stage2.num_epochs', 25)]
    assert budget_overrides(structure, 21) == {'train.stage1.num_epochs': 11, 'train.stage2.num_epochs': 10}
    structure['train']['stage1']['num_epochs'] = 150
    structure['train']['stage2']['num_epochs'] = 50
    assert budget_overrides(structure, 40) == {'train.stage1.num_epochs': 30, 'train.stage2.num_epochs': 10}
    with pytest.raises(ValueError, match='smaller than the number of stages'):
        budget_overrides(structure, 1)


def test_reading_a_config_builds_nothing_and_hashes_follow_content(tmp_path):
    # read_structure must not run !import_call: this one would fail if it did
    path = tmp_path / 'c.yaml'
    path.write_text("datasets:\n  d: !import_call {key: 'no.such.module.f', init: {kwargs: {split: 'train'}}}\n"
                    "train: {num_epochs: 3}\n")
    assert read_structure(str(path))['datasets']['d']['key'] == 'no.such.module.f'
    base = config_hash(str(path), {'train.num_epochs': 3})
    assert base == config_hash(str(path), {'train.num_epochs': 3})
    assert base != config_hash(str(path), {'train.num_epochs': 4})
    assert base != config_hash(str(path), {'train.num_epochs': 3}, upstream='teacher-hash')
    path.write_text(path.read_text() + '# a comment changes the content\n')
    assert base != config_hash(str(path), {'train.num_epochs': 3})


def test_plan_rejects_unknown_methods_and_skips_the_ta_when_unneeded(tmp_path):
    suite = build_suite('digits', quick=True)
    with pytest.raises(HarnessError, match='valid methods: scratch, kd, takd'):
        plan_suite(suite, str(tmp_path), methods=['kd', 'bogus'])
    jobs = plan_suite(suite, str(tmp_path), methods=['kd'], seeds=[3])
    assert [(job.role, job.seed) for job in jobs] == [('teacher', 3), ('student', 3)]
    assert jobs[1].teacher_ckpt == os.path.join(jobs[0].run_dir, 'student_best.pt')
    takd = plan_suite(suite, str(tmp_path), methods=['takd'], seeds=[0])
    assert [job.role for job in takd] == ['teacher', 'ta', 'student']
    assert takd[2].teacher_ckpt.startswith(os.path.join(str(tmp_path), 'cache', 'ta-'))


def test_sinusoid_splits_are_fixed_and_the_test_grid_is_f_itself():
    train, again = sinusoid_split('train'), sinusoid_split('train')
    assert train.tensors[0].shape == (200, 1) and train.tensors[1].shape == (200, 1)
    assert torch.equal(train.tensors[0], again.tensors[0]) and torch.equal(train.tensors[1], again.tensors[1])
    test = sinusoid_split('test')
    x = torch.linspace(0, 1, 500)
    assert torch.allclose(test.tensors[0].squeeze(1), x)
    expected = torch.sin(3 * torch.pi * x) + torch.sin(6 * torch.pi * x) + torch.sin(9 * torch.pi * x)
    assert torch.allclose(test.tensors[1].squeeze(1), expected, atol=1e-6)
    assert sinusoid_function(0.5) == pytest.approx(1.0 + 0.0 - 1.0, abs=1e-12)  # sin(1.5 pi) + sin(3 pi) + sin(4.5 pi)
    noise = train.tensors[1].squeeze(1) - sinusoid_function(train.tensors[0].squeeze(1).double()).float()
    assert 0.05 < noise.std().item() < 0.15  # noise_std 0.1
    with pytest.raises(ValueError, match='split must be one of'):
        sinusoid_split('dev')


def test_cli_documents_every_flag_and_rejects_unknown_names(capsys):
    from benchmarks.cli import build_parser, main
    text = build_parser().format_help()
    for flag in ('--suite', '--methods', '--seeds', '--epochs', '--teacher-epochs', '--ta-epochs', '--device',
                 '--output-dir', '--quick', '--jobs', '--threads', '--task', '--data-root', '--download', '--option'):
        assert flag in text
    for argv, expected in ((['--suite', 'nope'], 'valid suites: cifar10, cifar100, digits'),
                           (['--methods', 'kd,nope', '--list-methods', '--option', 'ablations=true'], None),
                           (['--seeds', 'x'], '--seeds expects integers')):
        if expected is None:  # --list-methods does not validate --methods; it lists the valid names
            assert main(argv, repo_root=REPO) == 0
            assert 'annealing_kd_tau1' in capsys.readouterr().out
            continue
        with pytest.raises(SystemExit) as exit_info:
            main(argv, repo_root=REPO)
        assert exit_info.value.code == 2 and expected in capsys.readouterr().err


def test_recipe_rule_takes_the_shortest_recipe_within_half_a_point_of_the_best_average():
    from benchmarks.suites.digits import TUNING_EPOCHS, TUNING_FAMILIES, TUNING_LRS, recipe_selection
    averages = {(0.003, 50): 80.0, (0.003, 100): 85.0, (0.01, 50): 90.0, (0.01, 100): 91.0, (0.03, 50): 90.6,
                (0.03, 100): 91.2}
    records = [{'method': f'{family}_lr{lr:g}_e{epochs}', 'seed': seed, 'best_val': value + offset, 'role': 'student'}
               for (lr, epochs), value in averages.items() for family, offset in zip(TUNING_FAMILIES, (-1, 0, 1))
               for seed in (0, 1)]
    rows, chosen = recipe_selection(records)
    assert len(rows) == len(TUNING_LRS) * len(TUNING_EPOCHS)
    # best average 91.2 (0.03, 100); within 0.5 of it (>= 90.7): only 100-epoch recipes (90.6 at 50 is not), and
    # among those the best average
    assert chosen == (0.03, 100)
    averages[(0.03, 50)] = 90.8  # now a 50-epoch recipe is within 0.5 points: the shorter one wins
    records = [dict(r, best_val=averages[(float(r['method'].split('_lr')[1].split('_e')[0]),
                                          int(r['method'].rsplit('_e', 1)[1]))] +
                    (-1, 0, 1)[TUNING_FAMILIES.index(r['method'].split('_lr')[0])]) for r in records]
    assert recipe_selection(records)[1] == (0.03, 50)
    failed = [dict(r, status='failed') if r['method'].startswith('kd_lr0.03_e50') else r for r in records]
    assert all((row['lr'], row['epochs']) != (0.03, 50) for row in recipe_selection(failed)[0])


def test_a_new_digits_method_is_one_row_of_the_config_table(monkeypatch):
    from benchmarks.suites import digits
    monkeypatch.setitem(digits.DIGITS_CONFIGS, 'new_method', digits.DIGITS_CONFIGS['kd'])  # its YAML: kd's here
    suite = build_suite('digits')
    assert list(suite.methods)[:7] == ['scratch', 'kd', 'takd', 'annealing_kd', 'continuation_kd',
                                       'kd_noise_mitigation', 'new_method']  # the table's order, the report's
    spec = suite.methods['new_method']
    assert (spec.config, spec.teacher_role, spec.group, spec.family) == (digits.DIGITS_CONFIGS['kd'], 'teacher',
                                                                          'main', 'new_method')
    jobs = plan_suite(suite, 'unused-output-dir', methods=['new_method'], seeds=[0])
    assert [(job.role, job.method) for job in jobs] == [('teacher', 'teacher'), ('student', 'new_method')]
    assert jobs[1].overrides == {'train.num_epochs': 50}  # the suite's budget, as every method


def test_a_new_cifar_method_is_one_row_of_the_generators_table(monkeypatch):
    from yaml_configs import cifar_configs
    monkeypatch.setitem(cifar_configs.RUNS, 'new_method', cifar_configs.Run('takd', 'student', 'ta'))
    suite = build_suite('cifar100', {'family': 'cnn'})
    assert list(suite.methods) == ['scratch', 'kd', 'takd', 'annealing_kd', 'new_method', 'continuation_kd']
    spec = suite.methods['new_method']
    assert (spec.config, spec.teacher_role) == ('yaml_configs/cifar100/takd/plain_cnn2_from_plain_cnn4.yaml', 'ta')
    assert cifar_configs.config_file('cifar100', 'cnn', 'new_method') == spec.config  # the generator's own path
