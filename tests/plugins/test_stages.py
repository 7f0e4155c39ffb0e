"""Algorithm 1's stage checkpoints, their settings and config checks, and the stage-length scheduler."""
import math
import os

import pytest
import torch
from torch import nn

import plugins.runner as runner
from plugins.config_checks import ConfigError, checked_stages
from plugins.glue.schedulers import StageLengthLinearWarmup, linear_warmup_schedule
from plugins.hooks import stage_optimizer_steps, tell_stage_length
from plugins.stage_checkpoints import StageCheckpoints
from plugins.stages import best_checkpoint_settings, keep_best_stage_checkpoints
from runner_fixtures import TWO_STAGE


def weights(value):
    model = nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(value)
        model.bias.fill_(value)
    return model


def test_each_stage_ends_on_its_best_checkpoint_and_the_run_on_the_last_stage_best(tmp_path):
    checkpoints = StageCheckpoints(str(tmp_path / 'final.pt'), metric='mse')  # lower is better
    model = weights(0.0)
    # stage 1: epochs 0-2 with validation mse 3, 1, 2 -> best epoch 1; stage 2: epochs 3-4 with 5, 4 -> epoch 4
    for epoch, (stage, value) in enumerate([(1, 3.0), (1, 1.0), (1, 2.0), (2, 5.0), (2, 4.0)]):
        model.load_state_dict(weights(10.0 * epoch).state_dict())  # the weights this epoch ends with
        improved = checkpoints.epoch_done(model, stage, epoch, value, stage_ends=epoch in (2, 4), run_ends=epoch == 4)
        assert improved == (epoch in (0, 1, 3, 4))
        if epoch == 2:  # stage 1 ended: the model holds epoch 1's weights again
            assert model.weight.flatten().tolist() == [10.0, 10.0]
    assert checkpoints.results == [{'stage': 1, 'best_epoch': 1, 'best_val': 1.0},
                                   {'stage': 2, 'best_epoch': 4, 'best_val': 4.0}]
    final = torch.load(tmp_path / 'final.pt', weights_only=True)
    assert final['best_value'] == 4.0 and final['model']['bias'].tolist() == [40.0]
    stage1 = torch.load(tmp_path / 'stage1_best.pt', weights_only=True)  # beside the final checkpoint by default
    assert (stage1['epoch'], stage1['stage'], stage1['best_value']) == (1, 1, 1.0)
    assert sorted(os.listdir(tmp_path)) == ['final.pt', 'stage1_best.pt', 'stage2_best.pt']  # no temporary files


def test_nan_never_counts_as_the_best_and_a_stage_without_a_finite_value_fails(tmp_path):
    checkpoints = StageCheckpoints(str(tmp_path / 'final.pt'), stage_ckpt=str(tmp_path / 's{stage}.pt'))
    model = weights(1.0)
    assert checkpoints.epoch_done(model, 1, 0, 50.0, stage_ends=False, run_ends=False)
    assert not checkpoints.epoch_done(model, 1, 1, math.nan, stage_ends=False, run_ends=False)
    assert checkpoints.results[-1]['best_epoch'] == 0
    assert not checkpoints.epoch_done(model, 2, 2, math.nan, stage_ends=False, run_ends=False)
    with pytest.raises(RuntimeError, match='stage 2: no epoch had a finite validation accuracy'):
        checkpoints.epoch_done(model, 2, 3, math.nan, stage_ends=True, run_ends=True)
    assert not os.path.exists(tmp_path / 'final.pt')


def test_save_pretrained_final_checkpoint_is_a_hugging_face_folder(tmp_path):
    transformers = pytest.importorskip('transformers')
    config = transformers.BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=8, num_labels=2)
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config)
    checkpoints = StageCheckpoints(str(tmp_path / 'student'), dst_format='save_pretrained')
    checkpoints.epoch_done(model, 1, 0, 60.0, stage_ends=False, run_ends=False)
    best = {key: value.clone() for key, value in model.state_dict().items()}
    with torch.no_grad():
        model.classifier.weight.add_(1.0)
    os.makedirs(tmp_path / 'student')
    (tmp_path / 'student' / 'tokenizer_config.json').write_text('{}')  # e.g. the script's tokenizer: kept
    checkpoints.epoch_done(model, 1, 1, 50.0, stage_ends=True, run_ends=True)
    reloaded = transformers.BertForSequenceClassification.from_pretrained(str(tmp_path / 'student'))
    assert all(torch.equal(reloaded.state_dict()[key], best[key]) for key in best)
    assert os.path.isfile(tmp_path / 'student' / 'tokenizer_config.json')
    assert [name for name in os.listdir(tmp_path) if name.startswith('.')] == []  # the staging folder is gone


@pytest.mark.parametrize('section, message', [
    (None, 'train.best_checkpoints must be a mapping with dst_ckpt'),
    ({'dst_ckpt': 'a.pt', 'dst': 'b.pt'}, r"train.best_checkpoints: unknown field\(s\) \['dst'\]; accepted: "
                                          r"\['dst_ckpt', 'dst_format', 'metric', 'stage_ckpt'\]"),
    ({}, "train.best_checkpoints.dst_ckpt must be the driver's final checkpoint path"),
    ({'dst_ckpt': 'a.pt', 'dst_format': 'pt'}, r"dst_format must be one of \['torchdistill', 'save_pretrained'\]"),
    ({'dst_ckpt': 'a.pt', 'metric': 'top1'}, r"train.best_checkpoints.metric must be one of \[.*'accuracy'"),
    ({'dst_ckpt': 'a.pt', 'stage_ckpt': 'stage.pt'}, 'stage_ckpt must be a path with a {stage} field'),
    ({'dst_ckpt': 'runs/stage2.pt', 'stage_ckpt': 'runs/stage{stage}.pt'}, 'names the same file as dst_ckpt'),
])
def test_bad_settings_name_the_field(section, message):
    train = {'stage1': {'num_epochs': 1}, 'stage2': {'num_epochs': 1}}
    if section is not None:
        train['best_checkpoints'] = section
    with pytest.raises(ValueError, match=message):
        best_checkpoint_settings(train)


def write_config(tmp_path, text):
    ckpt = tmp_path / 'teacher.pt'
    torch.manual_seed(0)
    torch.save({'model': nn.Linear(1, 1).state_dict()}, ckpt)
    path = tmp_path / 'config.yaml'
    path.write_text(text.replace('TEACHER_CKPT', repr(str(ckpt))))
    return str(path)


BAD_HOOKS = [
    ("    pre_epoch_process: 'keep_teacher_in_eval_mode'\n", '',
     r"train.stage2.pre_epoch_process must be one of \['advance_loss_schedules', 'keep_teacher_in_eval_mode'\] "
     r'\(the teacher in eval mode every epoch under any driver\), got None'),
    ("    pre_epoch_process: 'keep_teacher_in_eval_mode'\n    post_epoch_process: 'keep_best_stage_checkpoints'\n",
     "    pre_epoch_process: 'keep_teacher_in_eval_mode'\n",
     "train.stage2.post_epoch_process must be 'keep_best_stage_checkpoints' .Algorithm 1: each stage ends on its "
     'best checkpoint., got None'),
    ("  best_checkpoints: {dst_ckpt: *dst_ckpt, metric: 'accuracy'}",
     "  best_checkpoints: {dst_ckpt: 'elsewhere.pt', metric: 'accuracy'}",
     r"train.best_checkpoints.dst_ckpt 'elsewhere.pt' must be models.student_model.dst_ckpt "
     r"\('runs/blobs/student_best.pt'\): the driver reloads that file as the final student"),
    ("  best_checkpoints: {dst_ckpt: *dst_ckpt, metric: 'accuracy'}",
     "  best_checkpoints: {dst_ckpt: *dst_ckpt, metric: 'mse'}",
     "train.best_checkpoints.metric 'mse' must be evaluation.metric 'accuracy'"),
    ("  best_checkpoints: {dst_ckpt: *dst_ckpt, metric: 'accuracy'}\n", '',
     'train.best_checkpoints must be a mapping with dst_ckpt'),
]


@pytest.mark.parametrize('old, new, message', BAD_HOOKS)
def test_configs_without_the_hooks_fail_before_training(tmp_path, monkeypatch, old, new, message):
    assert old in TWO_STAGE
    monkeypatch.setattr(runner, '_train_one_epoch', lambda *args: pytest.fail('training started'))
    with pytest.raises(ConfigError, match=message):
        runner.run_config(write_config(tmp_path, TWO_STAGE.replace(old, new, 1)), output_dir=str(tmp_path / 'run'))


def single_stage_config():
    stage = {'num_epochs': 1, 'train_data_loader': {'dataset_id': 'train'}, 'val_data_loader': {'dataset_id': 'val'},
             'post_epoch_process': 'keep_best_stage_checkpoints', 'criterion': {
                 'key': 'WeightedSumLoss', 'kwargs': {'sub_terms': {'ce': {
                     'criterion': {'key': 'CrossEntropyLoss', 'kwargs': {}},
                     'criterion_wrapper': {'key': 'SimpleLossWrapper', 'kwargs': {
                         'input': {'is_from_teacher': False, 'module_path': '.', 'io': 'output'},
                         'target': {'uses_label': True}}}, 'weight': 1.0}}}}}
    return {'datasets': {'train': None, 'val': None, 'test': None}, 'models': {'model': {'key': 'mlp'}},
            'train': stage, 'test': {'test_data_loader': {'dataset_id': 'test'}}}


def test_single_stage_configs_do_not_name_the_stage_process_and_boxes_refuse_it():
    with pytest.raises(ConfigError, match="train.post_epoch_process 'keep_best_stage_checkpoints' is for multi-stage "
                                          'configs; with one stage the driver keeps the best checkpoint itself'):
        checked_stages(single_stage_config())

    class SingleStageBox:  # what torchdistill's single-stage TrainingBox offers the process
        lr_scheduler, scheduling_step, distributed = None, 0, False
        model = nn.Linear(1, 1)

    with pytest.raises(RuntimeError, match='is for multi-stage configs'):
        keep_best_stage_checkpoints(SingleStageBox())


def test_stage_length_schedule_follows_transformers_once_told_and_refuses_to_step_before():
    from transformers import get_linear_schedule_with_warmup
    parameter = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=1.0)
    scheduler = linear_warmup_schedule(optimizer, num_training_steps='stage', warmup_ratio=0.2)
    assert isinstance(scheduler, StageLengthLinearWarmup) and scheduler.num_training_steps is None
    with pytest.raises(RuntimeError, match="no pre-epoch process told the scheduler the stage's length: name "
                                           "pre_epoch_process: 'keep_teacher_in_eval_mode'"):
        optimizer.step()
    scheduler.set_num_training_steps(10)
    reference_optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    reference = get_linear_schedule_with_warmup(reference_optimizer, num_warmup_steps=2, num_training_steps=10)
    for _ in range(11):
        assert optimizer.param_groups[0]['lr'] == reference_optimizer.param_groups[0]['lr']
        optimizer.step()
        scheduler.step()
        reference_optimizer.step()
        reference.step()
    state = scheduler.state_dict()
    assert 'factor' not in state and '_guard' not in state
    restored = linear_warmup_schedule(torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0), 'stage', 0.2)
    restored.load_state_dict(state)
    assert restored.num_training_steps == 10 and restored.last_epoch == 11
    with pytest.raises(ValueError, match="num_training_steps must be an integer >= 1 or 'stage'"):
        scheduler.set_num_training_steps(0)


def test_a_tiny_stage_gets_its_first_rate_from_its_length():
    # int(0.06 * 10) = 0 warm-up steps: the first rate is the full rate, known only once the length is told
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = linear_warmup_schedule(optimizer, num_training_steps='stage')
    scheduler.set_num_training_steps(10)
    assert optimizer.param_groups[0]['lr'] == 1.0 and scheduler.get_last_lr() == [1.0]


class LoaderOf:
    def __init__(self, batches):
        self.batches = batches

    def __len__(self):
        return self.batches


@pytest.mark.parametrize('batches, epochs, scheduling_step, accumulation, expected', [
    (7, 3, 1, 1, 21), (7, 3, 1, 2, 10), (7, 3, 2, 3, 3), (7, 3, 0, 1, 3), (1, 1, 4, 1, 1)])
def test_stage_length_counts_the_scheduler_steps_torchdistill_takes(batches, epochs, scheduling_step, accumulation,
                                                                    expected):
    class Box:
        train_data_loader = LoaderOf(batches)
        grad_accum_step = accumulation
        lr_scheduler = linear_warmup_schedule(torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0), 'stage')

    Box.scheduling_step = scheduling_step
    # torchdistill steps the scheduler after batch k of the stage when k is a multiple of both s and a
    steps = sum(1 for k in range(1, batches * epochs + 1) if k % scheduling_step == 0 and k % accumulation == 0) \
        if scheduling_step > 0 else epochs
    assert stage_optimizer_steps(Box, epochs) == max(1, steps) == expected
    tell_stage_length(Box, epochs)
    assert Box.lr_scheduler.num_training_steps == expected
    Box.lr_scheduler.set_num_training_steps(99)
    tell_stage_length(Box, epochs)  # a length given (e.g. by torchdistill's text script) is kept
    assert Box.lr_scheduler.num_training_steps == 99
