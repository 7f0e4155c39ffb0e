"""A diverging loss stops the run with a named error: which epoch and step, the value, and what to lower."""
import math
import os

import pytest
import torch

import plugins.runner as runner
from plugins import distributed as dist_util
from plugins.divergence import MAX_LOSS_RATIO, LossGuard
from plugins.errors import TrainingDivergedError
from plugins.models.mlp import mlp
from runner_fixtures import TWO_STAGE


class FakeBox:
    """The parts of a torchdistill box that ``_train_one_epoch`` uses; losses are scripted."""

    def __init__(self, losses, stage_number=None):
        self.losses, self.steps = iter(losses), 0
        self.train_data_loader = [(torch.zeros(2, 1), torch.zeros(2), {}) for _ in losses]
        self.optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
        if stage_number is not None:
            self.stage_number = stage_number

    def forward_process(self, sample_batch, targets, supp_dict):
        return torch.tensor(next(self.losses))

    def post_forward_process(self, loss):
        self.steps += 1


def test_the_bound_is_relative_to_the_first_loss_of_the_stage():
    box = FakeBox([], stage_number=1)
    guard = LossGuard(box)
    assert MAX_LOSS_RATIO == 1e4
    assert not guard.check(2.0, 0, 0) and not guard.check(2.0e4, 0, 1)  # exactly 1e4 x the first loss: allowed
    assert not guard.check(-2.0e4, 0, 2)  # magnitudes: a loss may be negative
    box.stage_number = 2
    assert not guard.check(1e-6, 3, 0) and not guard.check(1e4, 3, 1)  # the bound never drops below 1e4 x 1
    assert guard.check(1.0001e4, 3, 2)
    assert guard.message == ('training diverged: the loss rose to 1e+04 at epoch 3, step 2 (train.stage2), over '
                             '10000 x the first loss of this stage (1e-06); lower the learning rate '
                             '(train.stage2.optimizer.kwargs.lr is 0.5 now)')
    assert guard.check(1.0, 3, 3)  # once diverged, always diverged


@pytest.mark.parametrize('value', [math.nan, math.inf, -math.inf])
def test_a_non_finite_loss_stops_the_run_at_its_step(value):
    box = FakeBox([1.0, 1.2, value, 1.0])
    with pytest.raises(TrainingDivergedError) as error:
        runner._train_one_epoch(box, torch.device('cpu'), epoch=7, show_progress=False)
    assert str(error.value) == (f'training diverged: the loss is {value} at epoch 7, step 2 (train); lower the '
                                f'learning rate (train.optimizer.kwargs.lr is 0.5 now)')
    assert box.steps == 3  # no batch after the diverged one


def test_under_torchrun_every_rank_finishes_the_epoch_then_all_stop_together(monkeypatch):
    monkeypatch.setattr(dist_util, 'is_distributed', lambda: True)
    summed = []

    def sum_across_ranks(*values):  # another rank diverged too: the flags add up
        summed.append(values)
        return values[0], values[1], values[2] + 1

    monkeypatch.setattr(dist_util, 'sum_across_ranks', sum_across_ranks)
    box = FakeBox([1.0, math.nan, 1.0])
    with pytest.raises(TrainingDivergedError, match='the loss is nan at epoch 0, step 1'):
        runner._train_one_epoch(box, torch.device('cpu'), epoch=0, show_progress=False)
    assert box.steps == 3 and summed[0][2] is True  # DDP's collectives stay matched on every rank
    healthy = FakeBox([1.0, 1.0])
    with pytest.raises(TrainingDivergedError, match='the training loss diverged on another rank in epoch 4'):
        runner._train_one_epoch(healthy, torch.device('cpu'), epoch=4, show_progress=False)


def test_a_learning_rate_of_1e30_is_a_named_failure_not_a_result(tmp_path, capsys):
    torch.manual_seed(0)
    ckpt = tmp_path / 'teacher.pt'
    torch.save({'model': mlp(8, [32], 3).state_dict()}, ckpt)
    config = tmp_path / 'config.yaml'
    config.write_text(TWO_STAGE.replace('TEACHER_CKPT', repr(str(ckpt))))
    with pytest.raises(SystemExit) as exit_info:
        runner.main(['--config', str(config), '--output-dir', str(tmp_path / 'run'),
                     '--set', 'train.stage1.optimizer.kwargs.lr=1e30'])
    message = str(exit_info.value)
    assert message.startswith('error: training diverged: the loss ') and 'at epoch 0, step ' in message
    assert message.endswith('; lower the learning rate (train.stage1.optimizer.kwargs.lr is 1e+30 now)')
    assert '(train.stage1)' in message
    assert not os.path.exists(tmp_path / 'run' / 'result.json')  # no result for a diverged run
