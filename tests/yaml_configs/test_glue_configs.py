"""Every GLUE config: the paper's settings in the text script's schema, a clean load + check, and short real runs
on tiny local models."""
import importlib.util
import os
import sys

import numpy as np
import pytest
import torch
import yaml

from benchmarks.suites.glue import FAMILIES, TASKS, build_glue
from continuation import DEFAULT_MARGIN
from plugins.config_checks import checked_stages
from plugins.runner import apply_overrides, load_config, run_config

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/, for glue_fixtures
from glue_fixtures import HF_LABELS, make_family, write_glue_tsvs  # noqa: E402

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
# The Hugging Face glue columns, written out here; the primary figure of each task (the paper's tables).
TEXT_COLUMNS = {'cola': ['sentence'], 'sst2': ['sentence'], 'mrpc': ['sentence1', 'sentence2'],
                'stsb': ['sentence1', 'sentence2'], 'qqp': ['question1', 'question2'],
                'mnli': ['premise', 'hypothesis'], 'qnli': ['question', 'sentence'], 'rte': ['sentence1', 'sentence2'],
                'wnli': ['sentence1', 'sentence2']}
MAIN_FIGURE = {'cola': 'matthews_corr', 'stsb': 'pearson', 'mrpc': 'f1'}


class _PlainLoader(yaml.SafeLoader):
    """Reads torchdistill's tagged YAML as plain data (tagged nodes become ``{'!tag': mapping}``)."""


_PlainLoader.add_multi_constructor('!', lambda loader, suffix, node: {
    '!' + suffix: loader.construct_mapping(node, deep=True) if isinstance(node, yaml.MappingNode)
    else loader.construct_sequence(node)})


def plain(relative_path):
    with open(os.path.join(REPO, 'yaml_configs', relative_path)) as file:
        return yaml.load(file, Loader=_PlainLoader)


def role_of(family, model):
    return next(role for role, entry in FAMILIES[family].items() if entry.name == model)


def parts(relative_path):
    """(task, method, family, student role) of ``glue/rte/kd/bert_small_from_bert_large.yaml``."""
    _, task, method, name = relative_path.split(os.sep)
    student = name[:-len('.yaml')].split('_from_')[0]
    family = next(family for family, models in FAMILIES.items() if student in [m.name for m in models.values()])
    return task, method, family, role_of(family, student)


def stages(config):
    train = config['train']
    return [train[key] for key in sorted(train) if key.startswith('stage')] or [train]


def import_call(node, key):
    assert set(node) == {'!import_call'} and node['!import_call']['key'] == key, node
    return node['!import_call']['init']['kwargs']


@pytest.fixture(scope='module')
def tiny_glue(tmp_path_factory):
    """Official-layout TSVs for every task and tiny tokenizers / checkpoints of both families."""
    root = str(tmp_path_factory.mktemp('tiny_glue'))
    written = write_glue_tsvs(os.path.join(root, 'data'))
    return {'data': os.path.join(root, 'data'), 'root': root, 'written': written,
            'bert': make_family(root, 'bert'), 'roberta': make_family(root, 'roberta')}


def use_family(monkeypatch, tiny_glue, family):
    monkeypatch.setenv('KD_GLUE_DATA', tiny_glue['data'])
    for variable, path in tiny_glue[family].items():
        monkeypatch.setenv(variable, path)


def test_configs_on_disk_are_the_generated_ones():
    assert len(CONFIGS) == len(TASKS) * len(FAMILIES) * 8  # 3 ce + 2 kd + takd + annealing_kd + continuation_kd
    assert glue_configs.main(['--check']) == 0


def check_data_sections(config, task):
    assert import_call(config['datasets'], 'plugins.glue.data.glue_dataset_dict') == {
        'task': task, 'val_fraction': 0.1, 'split_seed': 0}
    preprocess = config['preprocess']
    splits = ['train', 'val', 'test'] + (['test_mismatched'] if task == 'mnli' else [])
    assert {key: value for key, value in preprocess.items() if key != 'label2id'} == {
        'text_keys': TEXT_COLUMNS[task], 'label_key': 'score' if task == 'stsb' else 'label_name',
        'pad_to_max_length': False, 'max_length': 128, 'base_split_name': 'train', 'batched': True,
        'dataset_id_map': {f'{task}/{split}': split for split in splits}}
    if task == 'stsb':  # the scores stay numbers (the script would number distinct scores as classes otherwise)
        assert import_call(preprocess['label2id'], 'plugins.glue.data.ScoreLabels') == {}
    else:
        assert preprocess['label2id'] == {name: index for index, name in enumerate(HF_LABELS[task])}
    assert ('extra_test_data_loaders' in config['test']) == (task == 'mnli')
    for loader in [config['test']['test_data_loader']] + list((config['test'].get('extra_test_data_loaders') or {})
                                                               .values()):
        assert loader['collate_fn'] == 'DataCollatorWithPadding' and loader['requires_supp'] is False


def check_models(config, relative_path, task, method, family, role):
    student = config['models'].get('student_model') or config['models']['model']
    assert student['dst_ckpt'] == f'./runs/{relative_path[:-len(".yaml")]}/student_best'  # a save_pretrained folder
    base = {'role': role, 'family': family}
    assert import_call(student['config_kwargs']['pretrained_model_name_or_path'], 'plugins.glue.names.resolve_model') \
        == base and student['model_kwargs'] == {'pretrained_model_name_or_path':
                                                 student['config_kwargs']['pretrained_model_name_or_path']}
    assert student['config_kwargs']['num_labels'] == (1 if task == 'stsb' else 3 if task == 'mnli' else 2)
    assert import_call(student['tokenizer_kwargs']['pretrained_model_name_or_path'],
                       'plugins.glue.names.resolve_tokenizer') == {'family': family}
    teacher = config['models'].get('teacher_model')
    if method == 'ce':
        assert teacher is None
        return
    teacher_role = 'ta' if method == 'takd' else 'teacher'
    assert import_call(teacher['config_kwargs']['pretrained_model_name_or_path'],
                       'plugins.glue.names.resolve_model') == {'role': teacher_role, 'family': family}
    assert teacher['tokenizer_kwargs'] == student['tokenizer_kwargs']
    # the teacher's weights only from its folder, the dst_ckpt of the config that trains it (or the TA)
    assert teacher['model_kwargs'] == {'pretrained_model_name_or_path': teacher['src_ckpt']}
    assert teacher['src_ckpt'].startswith('./runs/') and teacher['src_ckpt'].endswith('/student_best')
    assert os.path.isfile(os.path.join(REPO, 'yaml_configs', teacher['src_ckpt'][len('./runs/'):-len(
        '/student_best')] + '.yaml'))


def check_metric_sections(config, task):
    metric = {'cola': 'glue_cola', 'stsb': 'glue_stsb', 'mrpc': 'glue_mrpc', 'qqp': 'glue_qqp'}.get(task, 'accuracy')
    assert config['evaluation'] == {'metric': metric}
    assert list(config['metrics']) == [metric]
    assert import_call(config['metrics'][metric], 'plugins.glue.metrics.EvaluateMetric') == {'metric': metric}
    assert config['evaluate'] == {'main_metric': MAIN_FIGURE.get(task, 'accuracy'),
                                  'metrics': {metric: {'argmax': False}}}


@pytest.mark.parametrize('relative_path', CONFIGS)
def test_config_follows_the_paper_tables(relative_path):
    task, method, family, role = parts(relative_path)
    config, table = plain(relative_path), (TABLE_8 if family == 'roberta' else TABLE_11)[task]
    is_student = role == 'student'
    continuation = method == 'continuation_kd'  # the Continuation-KD paper's own settings: lr 2e-5, batch 64, 30 epochs
    for stage in stages(config):
        assert stage['optimizer']['key'] == 'AdamW' and stage['optimizer']['max_grad_norm'] == 1.0
        assert stage['optimizer']['kwargs'] == {'lr': table['lr'] if is_student and not continuation else 2e-5,
                                                'weight_decay': 0.0}
        assert stage['scheduler'] == {'key': 'linear_warmup_schedule', 'scheduling_step': 1,
                                      'kwargs': {'num_training_steps': 'stage', 'warmup_ratio': 0.06}}
        for model in ('teacher', 'student', 'model'):
            if model in stage:
                assert stage[model]['forward_proc'] == 'forward_batch_only_as_kwargs'
    first = stages(config)[0]
    assert first['train_data_loader']['kwargs']['batch_size'] == (64 if continuation else 32)
    for loader in (first['train_data_loader'], first['val_data_loader']):
        assert loader['collate_fn'] == 'DataCollatorWithPadding' and loader['requires_supp'] is False
    check_data_sections(config, task)
    check_models(config, relative_path, task, method, family, role)
    check_metric_sections(config, task)
    assert config['dependencies'] == [{'name': 'plugins'}]
    epochs = [stage['num_epochs'] for stage in stages(config)]
    if continuation:
        assert epochs == [30]
        kwargs = stages(config)[0]['criterion']['kwargs']['sub_terms']['continuation_kd']['criterion']['kwargs']
        assert {key: value for key, value in kwargs.items() if '_module_' not in key} == {
            'objective': 'annealed_hinge', 'max_temperature': 10, 'margin': DEFAULT_MARGIN,
            'distance_reduction': 'mean',
            'psi': {'ramp': '4/3', 'switch': '2/3'}, 'anneal_teacher': True, 'anneal_margin': True,
            'task': 'regression' if task == 'stsb' else 'classification'}
        assert kwargs['student_module_path'] == '.'  # the model output: its .logits, and its own .loss for psi x CE
        assert config['train']['pre_epoch_process'] == 'advance_loss_schedules'
        assert 'model_term' not in stages(config)[0]['criterion']['kwargs']  # the label term is inside the loss
    elif is_student and method != 'ce' or role == 'student':
        assert sum(epochs) == table['phase1'] + table['phase2']  # every student method: the same budget
    check_criteria(config, task, method, table, epochs)


def check_criteria(config, task, method, table, epochs):
    criteria = [stage['criterion'] for stage in stages(config)]
    terms = {name: term for criterion in criteria
             for name, term in (criterion['kwargs'].get('sub_terms') or {}).items()}
    if method == 'ce':
        assert criteria == [{'key': 'WeightedSumLoss', 'func2extract_model_loss': 'extract_hf_model_loss',
                             'kwargs': {'model_term': {'weight': 1.0}}}]
    if method == 'annealing_kd':
        assert epochs == [table['phase1'], table['phase2']]
        assert terms['annealing_kd']['criterion']['kwargs']['max_temperature'] == table['tau']
        assert config['train']['stage1']['pre_epoch_process'] == 'advance_loss_schedules'
        assert config['train']['stage2']['pre_epoch_process'] == 'keep_teacher_in_eval_mode'
        assert [stage['post_epoch_process'] for stage in stages(config)] == ['keep_best_stage_checkpoints'] * 2
        assert config['train']['best_checkpoints'] == {'dst_ckpt': config['models']['student_model']['dst_ckpt'],
                                                       'dst_format': 'save_pretrained',
                                                       'metric': config['evaluation']['metric']}
        assert set(terms) == {'annealing_kd'}
        assert criteria[1] == {'key': 'WeightedSumLoss', 'func2extract_model_loss': 'extract_hf_model_loss',
                               'kwargs': {'model_term': {'weight': 1.0}}}  # Stage II: the labels only
    if method in ('kd', 'takd'):
        assert config['train']['pre_epoch_process'] == 'keep_teacher_in_eval_mode'
        assert criteria[0]['func2extract_model_loss'] == 'extract_hf_model_loss'
        assert criteria[0]['kwargs']['model_term'] == {'weight': 0.5}  # alpha x the model's own loss on the labels
        for model in ('teacher', 'student'):  # torchdistill's losses read the heads' logits tensors
            assert config['train'][model]['forward_hook'] == {'input': [], 'output': ['classifier']}
        if task == 'stsb':
            assert {name: term['weight'] for name, term in terms.items()} == {'mse_teacher': 0.5}
            assert terms['mse_teacher']['criterion_wrapper']['kwargs']['target'] == {
                'is_from_teacher': True, 'module_path': 'classifier', 'io': 'output'}
        else:
            kd = terms['kd']['criterion']
            assert kd['key'] == 'KDLoss' and kd['kwargs']['alpha'] == 0.0 and kd['kwargs']['temperature'] == 1.0
            assert terms['kd']['weight'] == 0.5  # (1 - alpha) x T^2
            assert kd['kwargs']['student_module_path'] == kd['kwargs']['teacher_module_path'] == 'classifier'


def test_every_config_loads_and_passes_the_checks(tiny_glue, monkeypatch, tmp_path):
    use_family(monkeypatch, tiny_glue, 'bert')  # any tokenizer: loading builds the datasets, no model
    teacher_ckpt = str(tmp_path / 'teacher.pt')
    torch.save({'model': {}}, teacher_ckpt)
    for relative_path in CONFIGS:
        task, method, _, _ = parts(relative_path)
        config = load_config(os.path.join(REPO, 'yaml_configs', relative_path))  # adapted for the runner
        checked = checked_stages(config, teacher_ckpt=teacher_ckpt)
        assert len(checked) == (2 if method == 'annealing_kd' else 1), relative_path
        assert len(config['datasets'][f'{task}/train']) == 36 and len(config['datasets'][f'{task}/val']) == 4
        models = config['models']
        assert all(entry['key'] == 'hf_text_classifier' for entry in models.values())
        if 'teacher_model' in models:  # built untrained, then its checkpoint loaded: never the base weights
            assert models['teacher_model']['kwargs']['from_config'] is True
            assert models['teacher_model']['src_ckpt'].endswith('/student_best')
        student = models.get('student_model', models.get('model'))
        assert student['kwargs']['from_config'] is False and student['src_ckpt'] is None


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


def _independent_outputs(run_dir, tiny_glue, task, family, num_labels, dev_file):
    """The saved student's outputs on the dev file as written, recomputed outside the runner (the tokenizer's own
    padding, batches of 5) with the labels the fixture wrote."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    paths = tiny_glue[family]
    model = AutoModelForSequenceClassification.from_pretrained(paths['KD_GLUE_STUDENT'], num_labels=num_labels)
    model.load_state_dict(torch.load(os.path.join(run_dir, 'student_best.pt'), weights_only=True)['model'])
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(paths['KD_GLUE_TOKENIZER'])
    examples = tiny_glue['written'][task][dev_file]
    outputs = []
    with torch.no_grad():
        for start in range(0, len(examples), 5):
            columns = [list(column) for column in zip(*[texts for texts, _ in examples[start:start + 5]])]
            batch = tokenizer(*columns, padding=True, truncation=True, max_length=128, return_tensors='pt')
            outputs.append(model(**batch).logits)
    return torch.cat(outputs).numpy(), np.array([label for _, label in examples])


def _untrained_teacher(path, config_path_, family, tiny_glue):
    """The runner's teacher entry built and saved untrained (a .pt file, as the harness hands teachers over)."""
    from transformers import AutoModelForSequenceClassification

    num_labels = plain(config_path_.split('yaml_configs' + os.sep)[1])['models']['teacher_model']['config_kwargs'][
        'num_labels']
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_glue[family]['KD_GLUE_TEACHER'],
                                                               num_labels=num_labels)
    torch.save({'model': model.state_dict()}, path)
    return path


def config_path(relative_path):
    return os.path.join(REPO, 'yaml_configs', 'glue', relative_path)


def test_single_sentence_kd_run_cola_bert(tiny_glue, monkeypatch, tmp_path):
    from sklearn.metrics import matthews_corrcoef

    use_family(monkeypatch, tiny_glue, 'bert')
    path = config_path('cola/kd/bert_small_from_bert_large.yaml')
    teacher_ckpt = _untrained_teacher(str(tmp_path / 'teacher.pt'), path, 'bert', tiny_glue)
    result = run_config(path, seed=0, output_dir=str(tmp_path / 'kd'), teacher_ckpt=teacher_ckpt,
                        overrides={'train.num_epochs': 2}, show_progress=False)
    outputs, labels = _independent_outputs(str(tmp_path / 'kd'), tiny_glue, 'cola', 'bert', 2, 'dev.tsv')
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
                        teacher_ckpt=os.path.join(teacher_dir, 'student_best.pt'),  # the runner's own .pt
                        overrides={'train.stage1.num_epochs': 2, 'train.stage2.num_epochs': 1,
                                   'train.stage1.criterion.kwargs.sub_terms.annealing_kd.criterion.kwargs'
                                   '.max_temperature': 2}, show_progress=False)
    assert [entry['schedule'].get('AnnealingKDLoss', {}).get('phi') for entry in result['history']] == [0.5, 1.0, None]
    assert [stage['stage'] for stage in result['stages']] == [1, 2]
    for dev_file, figures in (('dev_matched.tsv', result['test']), ('dev_mismatched.tsv',
                                                                    result['extra_tests']['mismatched'])):
        outputs, labels = _independent_outputs(str(tmp_path / 'annealing'), tiny_glue, 'mnli', 'roberta', 3, dev_file)
        assert figures['accuracy'] == pytest.approx(100 * np.mean(outputs.argmax(1) == labels)), dev_file


def test_regression_continuation_run_stsb_roberta(tiny_glue, monkeypatch, tmp_path):
    use_family(monkeypatch, tiny_glue, 'roberta')
    path = config_path('stsb/continuation_kd/distilroberta_base_from_roberta_large.yaml')
    teacher_ckpt = _untrained_teacher(str(tmp_path / 'teacher.pt'), path, 'roberta', tiny_glue)
    result = run_config(path, output_dir=str(tmp_path / 'continuation'), teacher_ckpt=teacher_ckpt,
                        overrides={'train.num_epochs': 3, 'train.criterion.kwargs.sub_terms.continuation_kd.criterion.'
                                   'kwargs.max_temperature': 3}, show_progress=False)
    outputs, labels = _independent_outputs(str(tmp_path / 'continuation'), tiny_glue, 'stsb', 'roberta', 1, 'dev.tsv')
    assert outputs.shape == (12, 1) and labels.shape == (12,)
    assert result['metric'] == 'pearson'
    # float32 outputs of differently padded batches agree to ~1e-6; 12 points magnify that in the correlation
    assert result['test']['pearson'] == pytest.approx(100 * np.corrcoef(outputs[:, 0], labels)[0, 1], rel=1e-4)
    assert result['test']['mse'] == pytest.approx(float(np.mean((outputs[:, 0] - labels) ** 2)), rel=1e-4)
    # Eq. 8 at 3 epochs: psi = e / 4 before the switch at epoch 2, then 1; T = 3..1 over the run
    schedule = [entry['schedule']['ContinuationKDLoss'] for entry in result['history']]
    assert [s['T'] for s in schedule] == [3, 2, 1] and [s['psi'] for s in schedule] == [0.0, 0.25, 1.0]
