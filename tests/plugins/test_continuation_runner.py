"""A real torchdistill run of a one-stage Continuation-KD config (Algorithm 1): schedule logs, best checkpoint."""
import copy

import pytest
import torch

import plugins.runner as runner
from plugins.models.mlp import mlp
from runner_fixtures import BLOBS_AND_MLPS, LOADERS, make_blobs, write_config

ONE_STAGE = BLOBS_AND_MLPS + '''
train:
  num_epochs: 6
  pre_epoch_process: 'advance_loss_schedules'
''' + LOADERS.replace('\n    ', '\n  ') + '''
  teacher: {requires_grad: False, forward_proc: 'forward_batch_only'}
  student: {requires_grad: True, forward_proc: 'forward_batch_only'}
  optimizer: {key: 'SGD', kwargs: {lr: 0.1, momentum: 0.9}}
  criterion:
    key: 'WeightedSumLoss'
    kwargs:
      sub_terms:
        continuation_kd:
          criterion:
            key: 'ContinuationKDLoss'
            kwargs: {student_module_path: '.', student_module_io: 'output', teacher_module_path: '.',
                     teacher_module_io: 'output', max_temperature: 3, margin: 0.1, psi: {ramp: '1/2'}}
          weight: 1.0
test:
  test_data_loader:
    dataset_id: 'blobs/test'
    sampler: {class_or_func: !import_get {key: 'torch.utils.data.SequentialSampler'}, kwargs: }
    kwargs: {batch_size: 64, num_workers: 0}
'''


@pytest.fixture
def config_path(tmp_path, teacher_ckpt):
    return write_config(tmp_path, teacher_ckpt, ONE_STAGE)


def run_with_scripted_validation(config_path, output_dir, scripted, monkeypatch):
    """Runs the config with the given validation values; returns the result and the student's weights at each
    evaluation (after each epoch's training, then at the test)."""
    real_evaluate, values, states = runner.evaluate, iter(scripted), []

    def evaluate(model, data_loader, device, metric, forward_proc=None):
        states.append(copy.deepcopy(model.state_dict()))
        value = next(values, None)
        return real_evaluate(model, data_loader, device, metric, forward_proc) if value is None else \
            {'accuracy': value}

    monkeypatch.setattr(runner, 'evaluate', evaluate)
    return runner.run_config(config_path, seed=0, output_dir=str(output_dir)), states


def same_weights(a, b):
    return all(torch.equal(a[key], b[key]) for key in a)


def test_one_stage_run_logs_the_schedule_and_ends_with_the_best_checkpoint(config_path, tmp_path, monkeypatch):
    best_early = [10.0, 40.0, 20.0, 30.0, 5.0, 7.0]  # the best validation is epoch 1 of 6
    result, states = run_with_scripted_validation(config_path, tmp_path / 'a', best_early, monkeypatch)

    schedule = [entry['schedule']['ContinuationKDLoss'] for entry in result['history']]
    assert [s['T'] for s in schedule] == [3, 3, 2, 2, 1, 1]
    assert [s['phi'] for s in schedule] == pytest.approx([1 / 3, 1 / 3, 2 / 3, 2 / 3, 1, 1])
    assert [s['psi'] for s in schedule] == pytest.approx([0, 1 / 3, 2 / 3, 1, 1, 1])  # ramp of 3 epochs
    log = (tmp_path / 'a' / 'train.log').read_text()
    for epoch, text in enumerate(['T=3, phi=0.3333, psi=0', 'T=2, phi=0.6667, psi=0.6667', 'T=1, phi=1, psi=1']):
        assert f'ContinuationKDLoss: {text}' in log, text

    assert result['stages'] == [{'stage': 1, 'best_epoch': 1, 'best_val': 40.0}] and result['epochs'] == 6
    assert len(states) == 7  # six validations, then the test
    final = torch.load(tmp_path / 'a' / 'student_best.pt', weights_only=True)['model']
    assert same_weights(final, states[1])  # the weights validated after epoch 1 (Algorithm 1, lines 14-16)
    assert same_weights(states[6], states[1])  # and the test saw them
    assert not same_weights(states[5], states[1])
    student = mlp(8, [4], 3)
    student.load_state_dict(final)
    features, labels = make_blobs('test').tensors
    with torch.no_grad():
        accuracy = 100.0 * (student(features).argmax(1) == labels).float().mean().item()
    assert result['test']['accuracy'] == pytest.approx(accuracy)

    # Nothing reloads mid-run: the same run validated as always improving (where a reload of the best would be
    # a no-op) trains exactly the same weights epoch by epoch.
    always_better, other_states = run_with_scripted_validation(config_path, tmp_path / 'b', [1, 2, 3, 4, 5, 6],
                                                               monkeypatch)
    assert all(same_weights(a, b) for a, b in zip(states[:6], other_states[:6]))
    assert [h['train_loss'] for h in result['history']] == [h['train_loss'] for h in always_better['history']]


@pytest.mark.parametrize('old, new, message', [
    ("psi: {ramp: '1/2'}", 'psi: {ramp: 1}', r"psi \{'ramp': 1\} is longer than the stage: with "
                                             r'train.num_epochs=6, psi is 0.8333 < 1 at the last epoch'),
    ("psi: {ramp: '1/2'}", 'psi: {ramp: -0.5}', 'psi.ramp must be > 0'),
    ('margin: 0.1', 'margin: -0.1', 'margin must be a finite number >= 0'),
    ('max_temperature: 3', 'max_temperature: 7', 'train.num_epochs=6 is shorter than the 7 levels of max_temperature'),
    ("pre_epoch_process: 'advance_loss_schedules'", '',
     r"train.pre_epoch_process must be 'advance_loss_schedules' for the scheduled loss\(es\) \['ContinuationKDLoss'\]"),
])
def test_bad_continuation_configs_fail_before_training(config_path, tmp_path, monkeypatch, old, new, message):
    text = open(config_path).read()
    assert old in text
    with open(config_path, 'w') as file:
        file.write(text.replace(old, new, 1))
    monkeypatch.setattr(runner, 'evaluate', lambda *args, **kwargs: pytest.fail('training started'))
    with pytest.raises(runner.ConfigError, match=message):
        runner.run_config(config_path, output_dir=str(tmp_path / 'run'))


def test_the_teacher_stops_running_when_psi_reaches_one_and_the_run_is_unchanged(config_path, tmp_path, monkeypatch):
    import plugins.hooks
    import plugins.idle_teacher
    skipped = []

    def counting_skip(*args, **kwargs):
        skipped.append(1)

    monkeypatch.setattr(plugins.idle_teacher, 'skip_teacher_forward', counting_skip)
    released = runner.run_config(config_path, seed=0, output_dir=str(tmp_path / 'released'))
    # psi = 0, 1/3, 2/3, 1, 1, 1: the teacher is skipped in the last 3 epochs, 96 / 16 = 6 steps each
    assert [entry['schedule']['ContinuationKDLoss']['psi'] for entry in released['history']][3] == 1
    assert len(skipped) == 3 * 6
    assert 'does not read the teacher for the rest of this stage' in (tmp_path / 'released' / 'train.log').read_text()

    monkeypatch.setattr(plugins.hooks, 'release_idle_teacher', lambda box: False)
    always = runner.run_config(config_path, seed=0, output_dir=str(tmp_path / 'always'))
    assert len(skipped) == 3 * 6
    assert [h['train_loss'] for h in released['history']] == [h['train_loss'] for h in always['history']]
    assert [h['val'] for h in released['history']] == [h['val'] for h in always['history']]
    assert released['test'] == always['test']
