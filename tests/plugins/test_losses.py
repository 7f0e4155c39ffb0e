import pytest
import torch
import torch.nn.functional as F
from torchdistill.losses.registry import get_mid_level_loss
from torchdistill.losses.mid_level import KDLoss

import plugins  # noqa: F401
from plugins import AnnealedTeacherLossWrapper, AnnealingKDLoss, ContinuationKDLoss

PATHS = dict(student_module_path='.', student_module_io='output', teacher_module_path='.', teacher_module_io='output')


def io(tensor):
    return {'.': {'output': tensor}}


def test_fresh_annealing_loss_is_at_the_start_of_stage_one():
    loss = AnnealingKDLoss(**PATHS, max_temperature=10)
    assert loss.temperature == 10 and loss.phi == pytest.approx(0.1)
    state = loss.set_progress(19, 20)
    assert state == {'lambda': 1.0, 'T': 1, 'phi': 1.0} and loss.phi == 1.0


def test_annealing_loss_from_yaml_kwargs_matches_eq3_by_hand():
    loss = get_mid_level_loss({'key': 'AnnealingKDLoss', 'kwargs': dict(PATHS, max_temperature=2)})
    student = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    teacher = torch.tensor([[2.0, 0.0], [0.0, 4.0]], requires_grad=True)
    value = loss(io(student), io(teacher))  # Phi = 0.5: squared errors 0 + 4 + 9 + 4
    assert value.item() == pytest.approx(17 / 4)
    value.backward()
    assert teacher.grad is None
    assert torch.allclose(student.grad, 2 * torch.tensor([[0.0, 2.0], [3.0, 2.0]]) / 4)


def test_set_epoch_walks_the_stage_and_per_iteration_counts_forwards():
    loss = AnnealingKDLoss(**PATHS, max_temperature=3)
    assert [loss.set_epoch(epoch, 6)['T'] for epoch in range(6)] == [3, 3, 2, 2, 1, 1]
    continuation = ContinuationKDLoss(**PATHS, objective='temperature', temperature=1.0, alpha=0.5,
                                      max_temperature=5.0, schedule={'shape': 'linear', 'per_iteration': True})
    continuation.train()
    student, teacher, targets = torch.randn(4, 3), torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    lambdas = []
    for epoch in range(2):
        continuation.set_epoch(epoch, 2, iterations_per_epoch=3)
        for _ in range(3):
            lambdas.append(continuation.state()['lambda'])
            continuation(io(student), io(teacher), targets)
    assert lambdas == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])


def test_continuation_loss_at_lambda_one_equals_torchdistill_kd():
    generator = torch.Generator().manual_seed(3)
    student, teacher = torch.randn(8, 5, generator=generator), torch.randn(8, 5, generator=generator)
    targets = torch.randint(0, 5, (8,), generator=generator)
    loss = get_mid_level_loss({'key': 'ContinuationKDLoss', 'kwargs': dict(
        PATHS, objective='temperature', temperature=4.0, alpha=0.5, max_temperature=12.0, schedule={'shape': 'cosine'})})
    loss.set_progress(9, 10)
    expected = KDLoss(**PATHS, temperature=4.0, alpha=0.5)(io(student), io(teacher), targets)
    assert loss(io(student), io(teacher), targets).item() == pytest.approx(expected.item(), abs=1e-6)


def test_annealed_teacher_wrapper_scales_what_the_inner_loss_sees():
    generator = torch.Generator().manual_seed(4)
    student, teacher = torch.randn(8, 5, generator=generator), torch.randn(8, 5, generator=generator)
    targets = torch.randint(0, 5, (8,), generator=generator)
    config = {'key': 'KDLoss', 'kwargs': dict(PATHS, temperature=4.0, alpha=0.5)}
    wrapped = get_mid_level_loss(config, {'key': 'AnnealedTeacherLossWrapper', 'kwargs': {
        'teacher_module_path': '.', 'teacher_module_io': 'output', 'max_temperature': 4}})
    assert isinstance(wrapped, AnnealedTeacherLossWrapper)
    teacher_io = io(teacher)
    value = wrapped(io(student), teacher_io, targets)  # T = 4: Phi = 0.25
    expected = KDLoss(**PATHS, temperature=4.0, alpha=0.5)(io(student), io(teacher * 0.25), targets)
    assert value.item() == pytest.approx(expected.item(), abs=1e-6)
    assert teacher_io['.']['output'] is teacher  # the caller's io_dict is not modified


def test_unknown_or_bad_yaml_keys_are_rejected():
    with pytest.raises(TypeError, match="unexpected keyword argument 'max_temperatur'"):
        AnnealingKDLoss(**PATHS, max_temperatur=10)
    with pytest.raises(ValueError, match="unexpected keyword argument 'temprature'"):
        ContinuationKDLoss(**PATHS, objective='kd', temprature=4.0, alpha=0.5)
    with pytest.raises(ValueError, match=r"schedule: unknown field\(s\) \['shap'\]"):
        ContinuationKDLoss(**PATHS, objective='kd', temperature=4.0, alpha=0.5, schedule={'shap': 'linear'})
    with pytest.raises(ValueError, match='schedule.per_iteration must be true or false'):
        ContinuationKDLoss(**PATHS, objective='kd', temperature=4.0, alpha=0.5, schedule={'per_iteration': 'yes'})
    with pytest.raises(ValueError, match='max_temperature must be an integer >= 1'):
        AnnealingKDLoss(**PATHS, max_temperature=2.5)
    with pytest.raises(ValueError, match='num_epochs=3 is shorter than the 10 levels'):
        AnnealingKDLoss(**PATHS, max_temperature=10).set_epoch(0, 3)


def test_extreme_logits_keep_the_training_step_finite():
    loss = AnnealingKDLoss(**PATHS, max_temperature=10)
    student = torch.tensor([[1e4, -1e4]], requires_grad=True)
    value = loss(io(student), io(torch.tensor([[-1e4, 1e4]])))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(student.grad).all()
    assert value.item() == pytest.approx(F.mse_loss(student, torch.tensor([[-1e3, 1e3]])).item())
