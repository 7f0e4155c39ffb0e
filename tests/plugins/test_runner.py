import copy
import json
import os

import pytest
import torch

import plugins.runner as runner
from plugins.config_checks import ConfigError
from plugins.models.mlp import mlp
from runner_fixtures import CONTINUATION_CRITERION, TWO_STAGE, write_config


def test_stage_two_starts_from_the_best_stage_one_checkpoint(tmp_path, teacher_ckpt, monkeypatch):
    scripted_val = iter([10.0, 40.0, 20.0, 30.0, 5.0, 7.0])  # stage-1 best is epoch 1, not the last one
    real_evaluate = runner.evaluate
    evaluated_splits = []

    def evaluate(model, data_loader, device, metric, forward_proc=None):
        evaluated_splits.append(len(data_loader.dataset))
        value = next(scripted_val, None)
        return real_evaluate(model, data_loader, device, metric, forward_proc) if value is None else \
            {'accuracy': value}

    states, real_train = {}, runner._train_one_epoch

    def train_one_epoch(box, device, epoch, show_progress):
        states[epoch] = copy.deepcopy(runner._unwrap(box.student_model).state_dict())
        return real_train(box, device, epoch, show_progress)

    monkeypatch.setattr(runner, 'evaluate', evaluate)
    monkeypatch.setattr(runner, '_train_one_epoch', train_one_epoch)
    output_dir = tmp_path / 'run'
    result = runner.run_config(write_config(tmp_path, teacher_ckpt), seed=0, output_dir=str(output_dir))

    best_stage1 = torch.load(output_dir / 'stage1_best.pt')['model']
    for key, value in states[4].items():  # weights entering stage II
        assert torch.equal(value, best_stage1[key])
        assert torch.equal(value, states[2][key])  # = the weights right after epoch 1
    assert any(not torch.equal(states[4][k], states[3][k]) for k in states[4])  # not the last stage-I weights
    assert result['stages'] == [{'stage': 1, 'best_epoch': 1, 'best_val': 40.0},
                                {'stage': 2, 'best_epoch': 5, 'best_val': 7.0}]
    assert [h['schedule'].get('AnnealingKDLoss', {}).get('T') for h in result['history']] == [2, 2, 1, 1, None, None]
    assert evaluated_splits == [45] * 7  # six validations, one test, all on 45-sample splits
    final = torch.load(output_dir / 'student_best.pt')['model']
    stage2_best = torch.load(output_dir / 'stage2_best.pt')['model']
    assert all(torch.equal(final[k], stage2_best[k]) for k in final)
    saved = json.loads((output_dir / 'result.json').read_text())
    assert saved['test'] == result['test'] and saved['best_val'] == 7.0
    assert os.path.isfile(output_dir / 'train.log')


def test_test_metric_is_computed_on_the_reloaded_best_model(tmp_path, teacher_ckpt):
    output_dir = tmp_path / 'run'
    result = runner.run_config(write_config(tmp_path, teacher_ckpt), seed=1, output_dir=str(output_dir))
    from runner_fixtures import make_blobs
    student = mlp(8, [4], 3)
    student.load_state_dict(torch.load(output_dir / 'student_best.pt')['model'])
    features, labels = make_blobs('test').tensors
    with torch.no_grad():
        accuracy = 100.0 * (student(features).argmax(1) == labels).float().mean().item()
    assert result['test']['accuracy'] == pytest.approx(accuracy)
    assert result['student_params'] == 8 * 4 + 4 + 4 * 3 + 3
    assert result['train_samples_per_s'] > 0 and result['epochs'] == 6


def test_same_seed_same_run_other_seed_other_run(tmp_path, teacher_ckpt):
    config = write_config(tmp_path, teacher_ckpt)
    runs = [runner.run_config(config, seed=seed, output_dir=str(tmp_path / f'r{i}'))
            for i, seed in enumerate([3, 3, 4])]
    losses = [[h['train_loss'] for h in run['history']] for run in runs]
    assert losses[0] == losses[1] and runs[0]['test'] == runs[1]['test']
    assert losses[0] != losses[2]


def test_continuation_kd_config_runs_in_torchdistill(tmp_path, teacher_ckpt):
    text = TWO_STAGE.replace('''criterion:
      key: 'WeightedSumLoss'
      kwargs:
        sub_terms:
          annealing_kd:''', 'PLACEHOLDER', 1)
    start = text.index('PLACEHOLDER')
    text = text[:start] + CONTINUATION_CRITERION + text[text.index('\n  stage2:') + len('\n  stage2:'):]
    result = runner.run_config(write_config(tmp_path, teacher_ckpt, text), output_dir=str(tmp_path / 'run'))
    schedule = [h['schedule']['ContinuationKDLoss'] for h in result['history'][:4]]
    assert [s['lambda'] for s in schedule] == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert [s['T'] for s in schedule] == pytest.approx([8, 6, 4, 2])
    assert [s['noise_strength'] for s in schedule] == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert 0 <= result['test']['accuracy'] <= 100


BAD_CONFIGS = [
    ('max_temperature: 2,', 'max_temperature: 2.5,', 'max_temperature must be an integer >= 1'),
    ("annealing: 'linear'", "annealing: 'sigmoid'", r"annealing must be one of \['cosine', 'exponential', 'linear'\]"),
    ('num_epochs: 4', 'num_epochs: 1', 'train.stage1.num_epochs=1 is shorter than the 2 levels'),
    ("pre_epoch_process: 'advance_loss_schedules'", '',
     "train.stage1.pre_epoch_process must be 'advance_loss_schedules'"),
    ("val_data_loader:\n      dataset_id: 'blobs/val'", "val_data_loader:\n      dataset_id: 'blobs/test'",
     "train.stage1.val_data_loader.dataset_id is the test split 'blobs/test'"),
    ("      dataset_id: 'blobs/val'", "      dataset_id: 'blobs/valid'", "'blobs/valid', which is not among"),
]


@pytest.mark.parametrize('old, new, message', BAD_CONFIGS)
def test_bad_configs_fail_before_training(tmp_path, teacher_ckpt, monkeypatch, old, new, message):
    assert old in TWO_STAGE
    monkeypatch.setattr(runner, '_train_one_epoch', lambda *args: pytest.fail('training started'))
    config = write_config(tmp_path, teacher_ckpt, TWO_STAGE.replace(old, new, 1))
    with pytest.raises(ConfigError, match=message):
        runner.run_config(config, output_dir=str(tmp_path / 'run'))
    assert not os.path.exists(tmp_path / 'run' / 'result.json')


def test_train_log_keeps_earlier_runs_and_a_config_error_leaves_it_untouched(tmp_path, teacher_ckpt):
    output_dir = tmp_path / 'run'
    config = write_config(tmp_path, teacher_ckpt)
    runner.run_config(config, seed=0, output_dir=str(output_dir))
    first = (output_dir / 'train.log').read_text()
    assert first.count('Test {') == 1
    runner.run_config(config, seed=0, output_dir=str(output_dir))
    both = (output_dir / 'train.log').read_text()
    assert both.startswith(first) and both.count('Test {') == 2  # appended, not overwritten
    (tmp_path / 'bad').mkdir()
    bad = write_config(tmp_path / 'bad', teacher_ckpt, TWO_STAGE.replace('max_temperature: 2', 'max_temperature: 0'))
    with pytest.raises(ConfigError):
        runner.run_config(bad, seed=0, output_dir=str(output_dir))
    assert (output_dir / 'train.log').read_text() == both
    with pytest.raises(ConfigError):
        runner.run_config(bad, seed=0, output_dir=str(tmp_path / 'new'))
    assert not os.path.exists(tmp_path / 'new' / 'train.log')  # created by the first log line, not before


def test_missing_validation_split_and_teacher_are_named(tmp_path, teacher_ckpt):
    text = TWO_STAGE
    start = text.index('    val_data_loader:')
    without_val = text[:start] + text[text.index('\n    teacher:', start) + 1:]
    with pytest.raises(ConfigError, match='train.stage1.val_data_loader is missing: a validation split is required'):
        runner.run_config(write_config(tmp_path, teacher_ckpt, without_val), output_dir=str(tmp_path / 'a'))
    with pytest.raises(ConfigError, match='models.teacher_model.src_ckpt: no file at'):
        runner.run_config(write_config(tmp_path, str(tmp_path / 'nowhere.pt')), output_dir=str(tmp_path / 'b'))
    start = text.index('  teacher_model:')
    without_teacher = text[:start] + text[text.index('  student_model:'):]
    with pytest.raises(ConfigError, match='reads the teacher, but models.teacher_model is missing'):
        runner.run_config(write_config(tmp_path, teacher_ckpt, without_teacher), output_dir=str(tmp_path / 'c'))


def test_cli_reports_config_errors_without_a_traceback(tmp_path, teacher_ckpt, capsys):
    config = write_config(tmp_path, teacher_ckpt, TWO_STAGE.replace('max_temperature: 2,', 'max_temperature: 0,'))
    with pytest.raises(SystemExit, match='config error: train.stage1.criterion: max_temperature must be an integer >= 1'):
        runner.main(['--config', config, '--output-dir', str(tmp_path / 'run')])
    with pytest.raises(SystemExit, match="--set expects KEY=VALUE"):
        runner.main(['--config', config, '--set', 'train.stage1.num_epochs'])
