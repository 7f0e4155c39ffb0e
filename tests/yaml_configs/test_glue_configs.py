"""Every GLUE config: the paper's settings, a clean load + check, and short real runs on tiny local models."""
import importlib.util
import os
import sys

import numpy as np
import pytest
import torch
import yaml
from torch.utils.data import DataLoader

from benchmarks.suites.glue import FAMILIES, TASKS, build_glue
from continuation import DEFAULT_MARGIN
from plugins.config_checks import check_config
from plugins.glue.data import glue_collate, glue_split
from plugins.glue.models import hf_sequence_classifier
from plugins.runner import apply_overrides, load_config, run_config

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/, for glue_fixtures
from glue_fixtures import make_family, write_glue_tsvs  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_spec = importlib.util.spec_from_file_location('glue_configs', os.path.join(REPO, 'yaml_configs', 'glue_configs.py'))
glue_configs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(glue_configs)
CONFIGS = sorted(glue_configs.all_configs())

# The paper's appendix B, written out here: Table 8 (DistilRoBERTa) and Table 11 (BERT-Small).
TABLE_8 = {task: {'lr': 2e-5, 'phase1': 14, 'phase2': 4, 'tau': 7} for task in TASKS}
TABLE_11 = {task: {'lr': lr, 'phase1': phase1, 'phase2': 6, 'tau': tau} for task, lr, phase1, tau in [
    ('cola', 2e-5, 28, 14), ('rte', 4e-5, 28, 14), ('mrpc', 4e-5, 14, 7), ('stsb', 2e-5, 28, 14),
    ('sst2', 2e-5, 14, 7), ('qnli', 2e-5, 14, 7), ('qqp', 2e-5, 28, 14), ('mnli', 2e-5, 28, 14),
    ('wnli', 2e-5, 14, 7)]}
STUDENT_METHODS = ('kd', 'takd', 'annealing_kd', 'continuation_kd')


class _PlainLoader(yaml.SafeLoader):
    """Reads torchdistill's tagged YAML as plain data (``!import_call`` nodes become their mappings)."""


_PlainLoader.add_multi_constructor('!', lambda loader, suffix, node: loader.construct_mapping(node, deep=True)
                                   if isinstance(node, yaml.MappingNode) else loader.construct_sequence(node))


def plain(relative_path):
    with open(os.path.join(REPO, 'yaml_configs', relative_path)) as file:
        return yaml.load(file, Loader=_PlainLoader)


def parts(relative_path):
    """(task, method, family, student role) of ``glue/rte/kd/bert_small_from_bert_large.yaml``."""
    _, task, method, name = relative_path.split(os.sep)
    student = name[:-len('.yaml')].split('_from_')[0]
    family = next(family for family, names in FAMILIES.items() if student in names.values())
    return task, method, family, next(role for role, model in FAMILIES[family].items() if model == student)


def stages(config):
    train = config['train']
    return [train[key] for key in sorted(train) if key.startswith('stage')] or [train]


@pytest.fixture(scope='module')
def tiny_glue(tmp_path_factory):
    """Official-layout TSVs for every task and tiny tokenizers / checkpoints of both families."""
    root = str(tmp_path_factory.mktemp('tiny_glue'))
    write_glue_tsvs(os.path.join(root, 'data'))
    return {'data': os.path.join(root, 'data'), 'root': root,
            'bert': make_family(root, 'bert'), 'roberta': make_family(root, 'roberta')}


def use_family(monkeypatch, tiny_glue, family):
    monkeypatch.setenv('KD_GLUE_DATA', tiny_glue['data'])
    for variable, path in tiny_glue[family].items():
        monkeypatch.setenv(variable, path)


def test_configs_on_disk_are_the_generated_ones():
    assert len(CONFIGS) == len(TASKS) * len(FAMILIES) * 8  # 3 ce + 2 kd + takd + annealing_kd + continuation_kd
    assert glue_configs.main(['--check']) == 0


@pytest.mark.parametrize('relative_path', CONFIGS)
def test_config_follows_the_paper_tables(relative_path):
    task, method, family, role = parts(relative_path)
    config, table = plain(relative_path), (TABLE_8 if family == 'roberta' else TABLE_11)[task]
    is_student = role == 'student'
    continuation = method == 'continuation_kd'  # the Continuation-KD paper's own settings: lr 2e-5, batch 64, 30 epochs
    for stage in stages(config):
        assert stage['optimizer']['key'] == 'AdamW' and stage['optimizer']['max_grad_norm'] == 1.0
        assert stage['optimizer']['kwargs']['lr'] == (table['lr'] if is_student and not continuation else 2e-5)
        assert stage['scheduler']['key'] == 'linear_warmup_schedule'
        assert stage['scheduler']['kwargs']['num_training_steps'] == 'stage'  # told by the pre-epoch process
    first = stages(config)[0]
    assert first['train_data_loader']['kwargs']['batch_size'] == (64 if continuation else 32)
    assert first['train_data_loader']['collate_fn'] == first['val_data_loader']['collate_fn'] == 'glue_collate'
    datasets = config['datasets']
    assert all(spec['init']['kwargs']['max_length'] == 128 and spec['init']['kwargs']['task'] == task
               and spec['init']['kwargs']['family'] == family for spec in datasets.values())
    assert (f'{task}/test_mismatched' in datasets) == (task == 'mnli')
    assert ('extra_test_data_loaders' in config['test']) == (task == 'mnli')
    epochs = [stage['num_epochs'] for stage in stages(config)]
    if continuation:
        assert epochs == [30]
        kwargs = stages(config)[0]['criterion']['kwargs']['sub_terms']['continuation_kd']['criterion']['kwargs']
        assert {key: value for key, value in kwargs.items() if '_module_' not in key} == {
            'objective': 'annealed_hinge', 'max_temperature': 10, 'margin': DEFAULT_MARGIN, 'distance_reduction': 'mean',
            'psi': {'ramp': '4/3', 'switch': '2/3'}, 'anneal_teacher': True, 'anneal_margin': True,
            'task': 'regression' if task == 'stsb' else 'classification'}
        assert config['train']['pre_epoch_process'] == 'advance_loss_schedules'
    elif is_student and method != 'ce' or role == 'student':
        assert sum(epochs) == table['phase1'] + table['phase2']  # every student method: the same budget
    terms = {name: term for stage in stages(config) for name, term in
             stage['criterion']['kwargs']['sub_terms'].items()}
    if method == 'annealing_kd':
        assert epochs == [table['phase1'], table['phase2']]
        assert terms['annealing_kd']['criterion']['kwargs']['max_temperature'] == table['tau']
        assert config['train']['stage1']['pre_epoch_process'] == 'advance_loss_schedules'
        assert config['train']['stage2']['pre_epoch_process'] == 'keep_teacher_in_eval_mode'
        assert [stage['post_epoch_process'] for stage in stages(config)] == ['keep_best_stage_checkpoints'] * 2
        assert config['train']['best_checkpoints'] == {'dst_ckpt': config['models']['student_model']['dst_ckpt'],
                                                       'dst_format': 'torchdistill',
                                                       'metric': config['evaluation']['metric']}
        assert set(terms) == {'annealing_kd', 'mse' if task == 'stsb' else 'ce'}
    if method in ('kd', 'takd'):
        if task == 'stsb':
            assert {name: term['weight'] for name, term in terms.items()} == {'mse_teacher': 0.5, 'mse': 0.5}
        else:
            assert terms['kd']['criterion']['key'] == 'KDLoss' and terms['kd']['criterion']['kwargs']['alpha'] == 0.5
    if method in ('kd', 'takd'):
        assert config['train']['pre_epoch_process'] == 'keep_teacher_in_eval_mode'
    teacher = config['models'].get('teacher_model')
    if method == 'ce':
        assert teacher is None
    else:
        assert teacher['kwargs']['role'] == ('ta' if method == 'takd' else 'teacher')
        # src_ckpt is the dst_ckpt of the config that trains the teacher (or TA)
        assert teacher['src_ckpt'].startswith('./runs/') and teacher['src_ckpt'].endswith('/student_best.pt')
        assert os.path.isfile(os.path.join(REPO, 'yaml_configs', teacher['src_ckpt'][len('./runs/'):-len(
            '/student_best.pt')] + '.yaml'))
    student = config['models'].get('student_model') or config['models']['model']
    assert student['dst_ckpt'] == f'./runs/{relative_path[:-len(".yaml")]}/student_best.pt'
    assert student['kwargs']['role'] == role and student['kwargs']['num_labels'] == (
        1 if task == 'stsb' else 3 if task == 'mnli' else 2)


def test_every_config_loads_and_passes_the_checks(tiny_glue, monkeypatch, tmp_path):
    use_family(monkeypatch, tiny_glue, 'bert')  # any tokenizer: loading builds the datasets, no model
    teacher_ckpt = str(tmp_path / 'teacher.pt')
    torch.save({'model': {}}, teacher_ckpt)
    for relative_path in CONFIGS:
        config = load_config(os.path.join(REPO, 'yaml_configs', relative_path))
        checked = check_config(config, teacher_ckpt=teacher_ckpt)
        assert len(checked) == (2 if '/annealing_kd/' in relative_path else 1), relative_path
        assert len(config['datasets']['rte/train' if '/rte/' in relative_path else next(iter(config['datasets']))]) > 0


def test_suite_builds_every_task_and_family_and_sets_the_environment(monkeypatch):
    for variable in ('KD_GLUE_DATA', 'KD_GLUE_TEACHER', 'KD_GLUE_STUDENT'):
        monkeypatch.setenv(variable, 'unchanged')  # restored after the test
    for task in TASKS:
        for family in FAMILIES:
            suite = build_glue({'task': task, 'family': family}, quick=True)
            paths = [suite.teacher_config, suite.ta_config] + [spec.config for spec in suite.methods.values()]
            assert all(os.path.isfile(os.path.join(REPO, path)) for path in paths)
            assert suite.methods['takd'].teacher_role == 'ta' and suite.methods['scratch'].teacher_role is None
    annealing = suite.methods['annealing_kd']
    apply_overrides(plain(annealing.config.split('yaml_configs/')[1]), annealing.overrides)  # the keys exist
    build_glue({'task': 'STS-B', 'data_root': '~/glue', 'teacher': '/m/t', 'student': '/m/s'})
    assert os.environ['KD_GLUE_DATA'] == os.path.expanduser('~/glue') and os.environ['KD_GLUE_TEACHER'] == '/m/t'
    with pytest.raises(ValueError, match="unknown GLUE suite option\\(s\\) \\['epochs'\\]"):
        build_glue({'epochs': 3})
    with pytest.raises(ValueError, match='option task must be one of'):
        build_glue({'task': 'squad'})


def _independent_predictions(run_dir, task, family, num_labels, split):
    """The saved student's outputs on ``split``, recomputed outside the runner."""
    model = hf_sequence_classifier(num_labels, role='student', family=family)
    model.load_state_dict(torch.load(os.path.join(run_dir, 'student_best.pt'), map_location='cpu')['model'])
    model.eval()
    outputs, labels = [], []
    with torch.no_grad():
        for batch, target in DataLoader(glue_split(task, split, family=family), batch_size=7, collate_fn=glue_collate):
            outputs.append(model(**batch))
            labels.append(target)
    return torch.cat(outputs).numpy(), torch.cat(labels).numpy()


def _untrained_teacher(path, task_labels):
    torch.save({'model': hf_sequence_classifier(task_labels, role='teacher', family='bert').state_dict()}, path)
    return path


def config_path(relative_path):
    return os.path.join(REPO, 'yaml_configs', 'glue', relative_path)


def test_single_sentence_kd_run_cola_bert(tiny_glue, monkeypatch, tmp_path):
    from sklearn.metrics import matthews_corrcoef

    use_family(monkeypatch, tiny_glue, 'bert')
    teacher_ckpt = _untrained_teacher(str(tmp_path / 'teacher.pt'), 2)
    result = run_config(config_path('cola/kd/bert_small_from_bert_large.yaml'), seed=0, output_dir=str(tmp_path / 'kd'),
                        teacher_ckpt=teacher_ckpt, overrides={'train.num_epochs': 2}, show_progress=False)
    outputs, labels = _independent_predictions(str(tmp_path / 'kd'), 'cola', 'bert', 2, 'test')
    assert result['metric'] == 'matthews_corr'
    assert result['test']['matthews_corr'] == pytest.approx(100 * matthews_corrcoef(labels, outputs.argmax(1)))
    assert result['test']['accuracy'] == pytest.approx(100 * np.mean(outputs.argmax(1) == labels))
    # 36 training examples = 2 batches of 32 per epoch, 4 steps in all, no warm-up step (int(0.06 x 4) = 0):
    # after epoch 1 the linear decay is half-way, 2e-5 x (4 - 2) / 4.
    assert [entry['lr'] for entry in result['history']] == pytest.approx([1e-5, 0.0])
    assert result['teacher_params'] > result['student_params']  # 2-layer teacher, 1-layer student


def test_sentence_pair_annealing_run_mnli_roberta(tiny_glue, monkeypatch, tmp_path):
    use_family(monkeypatch, tiny_glue, 'roberta')
    teacher_dir = str(tmp_path / 'teacher')
    teacher = run_config(config_path('mnli/ce/roberta_large.yaml'), output_dir=teacher_dir,
                         overrides={'train.num_epochs': 1}, show_progress=False)
    assert teacher['teacher_params'] is None and set(teacher['extra_tests']) == {'mismatched'}
    result = run_config(config_path('mnli/annealing_kd/distilroberta_base_from_roberta_large.yaml'),
                        output_dir=str(tmp_path / 'annealing'),
                        teacher_ckpt=os.path.join(teacher_dir, 'student_best.pt'),
                        overrides={'train.stage1.num_epochs': 2, 'train.stage2.num_epochs': 1,
                                   'train.stage1.criterion.kwargs.sub_terms.annealing_kd.criterion.kwargs'
                                   '.max_temperature': 2}, show_progress=False)
    assert [entry['schedule'].get('AnnealingKDLoss', {}).get('phi') for entry in result['history']] == [0.5, 1.0, None]
    assert [stage['stage'] for stage in result['stages']] == [1, 2]
    for split, figures in (('test', result['test']), ('test_mismatched', result['extra_tests']['mismatched'])):
        outputs, labels = _independent_predictions(str(tmp_path / 'annealing'), 'mnli', 'roberta', 3, split)
        assert figures['accuracy'] == pytest.approx(100 * np.mean(outputs.argmax(1) == labels)), split


def test_regression_continuation_run_stsb_roberta(tiny_glue, monkeypatch, tmp_path):
    use_family(monkeypatch, tiny_glue, 'roberta')
    torch.manual_seed(0)
    teacher_ckpt = str(tmp_path / 'teacher.pt')
    torch.save({'model': hf_sequence_classifier(1, role='teacher', family='roberta').state_dict()}, teacher_ckpt)
    result = run_config(config_path('stsb/continuation_kd/distilroberta_base_from_roberta_large.yaml'),
                        output_dir=str(tmp_path / 'continuation'), teacher_ckpt=teacher_ckpt,
                        overrides={'train.num_epochs': 3, 'train.criterion.kwargs.sub_terms.continuation_kd.criterion.'
                                   'kwargs.max_temperature': 3}, show_progress=False)
    outputs, labels = _independent_predictions(str(tmp_path / 'continuation'), 'stsb', 'roberta', 1, 'test')
    assert outputs.shape == labels.shape == (12, 1)
    assert result['metric'] == 'pearson'
    # float32 outputs of differently padded batches agree to ~1e-6; 12 points magnify that in the correlation
    assert result['test']['pearson'] == pytest.approx(100 * np.corrcoef(outputs[:, 0], labels[:, 0])[0, 1], rel=1e-4)
    assert result['test']['mse'] == pytest.approx(float(np.mean((outputs - labels) ** 2)), rel=1e-4)
    # Eq. 8 at 3 epochs: psi = e / 4 before the switch at epoch 2, then 1; T = 3..1 over the run
    schedule = [entry['schedule']['ContinuationKDLoss'] for entry in result['history']]
    assert [s['T'] for s in schedule] == [3, 2, 1] and [s['psi'] for s in schedule] == [0.0, 0.25, 1.0]
