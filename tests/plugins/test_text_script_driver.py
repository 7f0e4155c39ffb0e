"""The GLUE configs under a driver of torchdistill's text-script kind (tests/text_script_driver.py).

Algorithm 1 (Stage II from the best Stage-I checkpoint, the final student the best Stage-II checkpoint), the
teacher's state and each stage's learning-rate schedule must hold under that driver, which passes every batch with
its labels inside and ``targets=None``, validates with the config's ``metrics`` objects and keeps one best
``save_pretrained`` folder over the whole run.
"""
import os
import sys

import numpy as np
import pytest
import torch
from torchdistill.common import yaml_util
from torchdistill.common.main_util import import_dependencies

import plugins.stages
from plugins.checkpoint import load_checkpoint
from plugins.evaluation import get_metric
from plugins.glue.schedulers import StageLengthLinearWarmup

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.append(TESTS)  # for text_script_driver and glue_fixtures
from glue_fixtures import make_classifier_folder, make_family, write_glue_tsvs  # noqa: E402
from text_script_driver import evaluate_like_text_script, load_tokenizer_and_model, run_like_text_script  # noqa: E402

REPO = os.path.dirname(TESTS)
NUM_LABELS = {'rte': 2, 'sst2': 2, 'cola': 2, 'stsb': 1, 'mnli': 3}


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('text_driver'))
    written = write_glue_tsvs(os.path.join(root, 'data'), tasks=tuple(NUM_LABELS))
    return {'data': os.path.join(root, 'data'), 'written': written, 'roberta': make_family(root, 'roberta'),
            'bert': make_family(root, 'bert')}


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv('KD_GLUE_DATA', 'unset')  # set by use_family; restored after the test
    return tmp_path / 'runs'


def use_family(monkeypatch, tiny, family):
    monkeypatch.setenv('KD_GLUE_DATA', tiny['data'])
    for variable, path in tiny[family].items():
        monkeypatch.setenv(variable, path)


def load(relative_path, runs, epochs):
    """The config as a user runs it elsewhere: its ``./runs/`` paths under ``runs``, shorter stages; loaded as the
    text script loads it (YAML, then its dependencies)."""
    with open(os.path.join(REPO, 'yaml_configs', 'glue', relative_path)) as f:
        text = f.read().replace("./runs/", f'{runs}/')
    edited = runs.parent / os.path.basename(relative_path)
    edited.write_text(text)
    config = yaml_util.load_yaml_file(str(edited))
    import_dependencies(config.get('dependencies'))
    for dotted_key, value in epochs.items():
        node, *keys = config, *dotted_key.split('.')
        for key in keys[:-1]:
            node = node[key]
        assert keys[-1] in node, dotted_key
        node[keys[-1]] = value
    return config


def teacher_folder(config, tiny, family, seed=1):
    """A fine-tuned-style teacher at the config's teacher src_ckpt (what its own config's run would leave)."""
    teacher = config['models']['teacher_model']
    role = 'TA' if teacher['key'] in ('roberta_base', 'bert_base') else 'TEACHER'
    return make_classifier_folder(teacher['src_ckpt'], tiny[family][f'KD_GLUE_{role}'],
                                  teacher['config_kwargs']['num_labels'], seed=seed)


def state_of(model):
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


def same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


# Scripted validation: Stage I (epochs 0-6) is best at epoch 3, not its last epoch; Stage II (7-8) is best at
# epoch 7 and never beats Stage I, so the script's own single best over both stages stays the Stage-I model.
SCRIPTED = [10.0, 20.0, 30.0, 70.0, 40.0, 50.0, 30.0, 45.0, 35.0]
ANNEALING = 'rte/annealing_kd/distilroberta_base_from_roberta_large.yaml'


@pytest.mark.parametrize('reports', [False, True], ids=['hook-validates', 'driver-validates'])
def test_algorithm1_under_the_text_script_order(reports, tiny, runs, monkeypatch):
    use_family(monkeypatch, tiny, 'roberta')
    config = load(ANNEALING, runs, {'train.stage1.num_epochs': 7, 'train.stage2.num_epochs': 2})  # tau_max 7
    teacher_before = load_checkpoint(teacher_folder(config, tiny, 'roberta'))
    trained, entering, last_rates, schedulers, hook_evaluations = {}, {}, {}, {}, []

    def validate(box, epoch, student):  # after the epoch's training: the weights it ends with
        trained[epoch] = state_of(plugins.stages.box_student(box))
        last_rates[box.stage_number] = box.optimizer.param_groups[0]['lr']
        schedulers[box.stage_number] = box.lr_scheduler
        return SCRIPTED[epoch]

    def hook_evaluate(model, data_loader, device, metric, forward_proc=None):
        hook_evaluations.append(len(data_loader.dataset))
        return {'accuracy': SCRIPTED[len(hook_evaluations) - 1]}

    monkeypatch.setattr(plugins.stages, 'evaluate', hook_evaluate)
    result = run_like_text_script(
        config, validate=validate, report_validation=reports,
        on_epoch_start=lambda box, epoch: entering.__setitem__(epoch, state_of(plugins.stages.box_student(box))))
    dst = runs / 'glue/rte/annealing_kd/distilroberta_base_from_roberta_large'
    assert hook_evaluations == ([] if reports else [4] * 9)  # the hook validates itself only when not told
    assert result['saved'] == [0, 1, 2, 3]  # the script's own best: Stage I only
    best_stage1 = load_checkpoint(dst / 'stage1_best.pt')['model']
    assert same_state(best_stage1, trained[3])
    assert same_state(entering[7], best_stage1)  # Stage II starts from the best Stage-I checkpoint ...
    assert not same_state(entering[7], trained[6])  # ... not from the last Stage-I weights
    best_stage2 = load_checkpoint(dst / 'stage2_best.pt')['model']
    assert same_state(best_stage2, trained[7]) and not same_state(best_stage2, best_stage1)
    assert same_state(load_checkpoint(dst / 'student_best'), best_stage2)  # the hook's save_pretrained at the end
    assert same_state(state_of(result['student']), best_stage2)  # the script's final reload: the best Stage II
    assert same_state(state_of(result['teacher']), teacher_before)
    assert result['box'].stage_checkpoints.results == [{'stage': 1, 'best_epoch': 3, 'best_val': 70.0},
                                                      {'stage': 2, 'best_epoch': 7, 'best_val': 45.0}]
    # 36 training examples = 2 batches: Stage I's steps counted by the script (7 x 2), Stage II's (it has no loader
    # of its own) told by keep_teacher_in_eval_mode (2 x 2); each stage decays to 0 at its end.
    assert not isinstance(schedulers[1], StageLengthLinearWarmup)
    assert isinstance(schedulers[2], StageLengthLinearWarmup) and schedulers[2].num_training_steps == 4
    assert last_rates == {1: 0.0, 2: 0.0}


def independent_figures(student, tiny, task, family, dev_file, metric):
    """``metric`` on the dev file as written, recomputed outside the driver (the tokenizer's own padding)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny[family]['KD_GLUE_TOKENIZER'])
    examples = tiny['written'][task][dev_file]
    student.eval()
    with torch.no_grad():
        columns = [list(column) for column in zip(*[texts for texts, _ in examples])]
        logits = student(**tokenizer(*columns, padding=True, truncation=True, max_length=128,
                                     return_tensors='pt')).logits
    labels = torch.tensor(np.array([label for _, label in examples]))
    return get_metric(metric).compute(logits, labels.float() if task == 'stsb' else labels)


RUNS = [  # (family, config, epochs): every method, both families, a regression and MNLI's extra split
    ('roberta', 'rte/ce/roberta_large.yaml', {'train.num_epochs': 2}),
    ('roberta', 'rte/kd/distilroberta_base_from_roberta_large.yaml', {'train.num_epochs': 2}),
    ('roberta', 'rte/takd/distilroberta_base_from_roberta_base.yaml', {'train.num_epochs': 2}),
    ('roberta', ANNEALING, {'train.stage1.num_epochs': 7, 'train.stage2.num_epochs': 1}),
    ('roberta', 'rte/continuation_kd/distilroberta_base_from_roberta_large.yaml', {'train.num_epochs': 10}),
    ('bert', 'sst2/kd/bert_small_from_bert_large.yaml', {'train.num_epochs': 2}),
    ('bert', 'stsb/kd/bert_small_from_bert_large.yaml', {'train.num_epochs': 2}),
    ('bert', 'stsb/annealing_kd/bert_small_from_bert_large.yaml',
     {'train.stage1.num_epochs': 14, 'train.stage2.num_epochs': 1}),
    ('bert', 'stsb/continuation_kd/bert_small_from_bert_large.yaml', {'train.num_epochs': 10}),
    ('roberta', 'mnli/annealing_kd/distilroberta_base_from_roberta_large.yaml',
     {'train.stage1.num_epochs': 7, 'train.stage2.num_epochs': 1}),
]


@pytest.mark.parametrize('family, relative_path, epochs', RUNS, ids=[path for _, path, _ in RUNS])
def test_every_method_runs_in_the_text_script_order(family, relative_path, epochs, tiny, runs, monkeypatch):
    use_family(monkeypatch, tiny, family)
    config = load(relative_path, runs, epochs)
    task = relative_path.split('/')[0]
    teacher_before = load_checkpoint(teacher_folder(config, tiny, family)) if 'teacher_model' in config['models'] \
        else None
    rates, teacher_modes = {}, []

    def after_training(box, epoch):
        rates[getattr(box, 'stage_number', 1)] = box.optimizer.param_groups[0]['lr']
        if getattr(box, 'teacher_model', None) is not None:
            teacher_modes.append(any(module.training for module in box.teacher_model.modules()))

    def validate(box, epoch, student):
        # the real validation (dict batches, the config's metric objects), shifted by 100 so that the script's
        # val > best from best = 0 saves a first checkpoint whatever the sign of a random student's correlation (that
        # rule is tested below); the Annealing-KD hook validates by itself, unshifted
        return 100.0 + evaluate_like_text_script(student, box.val_data_loader, config['metrics'], config['evaluate'])[0]

    result = run_like_text_script(config, validate=validate, after_training=after_training)
    dst = runs / 'glue' / relative_path[:-len('.yaml')]
    assert same_state(state_of(result['student']), load_checkpoint(dst / 'student_best'))
    assert set(rates.values()) == {0.0}  # every stage's schedule ends at 0
    metric = config['evaluation']['metric']
    figures = independent_figures(result['student'], tiny, task, family, 'dev_matched.tsv' if task == 'mnli'
                                  else 'dev.tsv', metric)
    assert result['test'] == pytest.approx(figures, rel=1e-4)
    if teacher_before is not None:  # frozen, and in eval mode in every epoch of every stage
        assert same_state(state_of(result['teacher']), teacher_before)
        assert teacher_modes == [False] * result['box'].num_epochs
    if 'stage1' in config['train']:
        assert same_state(load_checkpoint(dst / 'stage2_best.pt')['model'], state_of(result['student']))
        assert [stage['stage'] for stage in result['box'].stage_checkpoints.results] == [1, 2]
    if task == 'mnli':  # the script tests the matched set; the mismatched one is built and tested as our runner does
        from torchdistill.datasets.util import build_data_loader
        loader_config = config['test']['extra_test_data_loaders']['mismatched']
        loader = build_data_loader(result['dataset_dict'][loader_config['dataset_id']], loader_config, False)
        mismatched = evaluate_like_text_script(result['student'], loader, config['metrics'], config['evaluate'])[1]
        assert mismatched == pytest.approx(independent_figures(result['student'], tiny, task, family,
                                                               'dev_mismatched.tsv', metric), rel=1e-4)


def test_a_missing_teacher_folder_stops_the_script_order_before_training(tiny, runs, monkeypatch):
    use_family(monkeypatch, tiny, 'roberta')
    config = load('rte/kd/distilroberta_base_from_roberta_large.yaml', runs, {'train.num_epochs': 1})
    with pytest.raises(OSError, match='student_best'):  # the teacher's model_kwargs name the missing folder too
        run_like_text_script(config)
    assert not (runs / 'glue/rte/kd').exists()  # nothing trained, nothing saved
    teacher = config['models']['teacher_model']
    teacher_folder(config, tiny, 'roberta')
    assert load_tokenizer_and_model(teacher, True)[1].config.num_labels == 2  # with the folder it loads


def test_the_script_never_saves_a_student_that_never_scores_above_zero(tiny, runs, monkeypatch):
    """A difference we cannot remove from a config: the script saves on ``val > best`` from ``best = 0``. CoLA's
    Matthews correlation of an untrained student on 4 validation examples stays 0, so nothing is saved and the
    final reload finds a folder holding only the tokenizer (the README says so; our runner keeps the best epoch)."""
    use_family(monkeypatch, tiny, 'bert')
    config = load('cola/kd/bert_small_from_bert_large.yaml', runs, {'train.num_epochs': 2})
    teacher_folder(config, tiny, 'bert')
    vals = []
    with pytest.raises(OSError, match='no file named model.safetensors'):
        run_like_text_script(config, after_training=lambda box, epoch: vals.append(epoch))
    assert vals == [0, 1]  # it trained, then failed at the final reload
    assert sorted(os.listdir(runs / 'glue/cola/kd/bert_small_from_bert_large/student_best')) == [
        'tokenizer.json', 'tokenizer_config.json']
