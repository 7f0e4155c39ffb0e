from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torchdistill.losses.registry import get_mid_level_loss
from torchdistill.losses.mid_level import KDLoss

import plugins  # noqa: F401
from continuation import DEFAULT_MARGIN, PSI_EQ7, PSI_EQ8, LabelWeightContinuation, psi_step
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
    loss.set_epoch(0, 2)  # T = 2
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
    wrapped.set_epoch(0, 4)
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
    loss.set_epoch(0, 10)
    student = torch.tensor([[1e4, -1e4]], requires_grad=True)
    value = loss(io(student), io(torch.tensor([[-1e4, 1e4]])))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(student.grad).all()
    assert value.item() == pytest.approx(F.mse_loss(student, torch.tensor([[-1e3, 1e3]])).item())


def hinge_loss(**kwargs):
    return get_mid_level_loss({'key': 'ContinuationKDLoss', 'kwargs': dict(PATHS, **kwargs)})


def test_continuation_loss_defaults_to_the_published_objective():
    loss = hinge_loss(max_temperature=20)
    assert loss.objective_name == 'annealed_hinge' and loss.objective.margin == DEFAULT_MARGIN
    assert loss.objective.psi_schedule.spec == PSI_EQ7 and loss.objective.distance_reduction == 'mean'
    assert loss.objective.anneal_teacher and loss.objective.anneal_margin and not loss.per_iteration
    states = [loss.set_epoch(epoch, 200) for epoch in range(200)]
    assert set(states[0]) >= {'T', 'phi', 'psi'}
    assert [s['T'] for s in states] == [20 - e // 10 for e in range(200)]
    assert [s['psi'] for s in states] == pytest.approx([min(1.0, e / 150) for e in range(200)], abs=1e-12, rel=0)


def test_continuation_loss_value_through_the_io_dicts():
    loss = hinge_loss(max_temperature=2, margin=1.0, psi={'value': 0.5})
    loss.set_epoch(0, 2)  # T = 2, phi = 0.5; d = 2, 6.5, 0.25 against m phi = 0.5 (tests/continuation/test_hinge.py)
    student = torch.tensor([[1.0, 2.0], [3.0, 4.0], [0.0, 0.0]])
    teacher, targets = torch.tensor([[2.0, 0.0], [0.0, 4.0], [1.0, 1.0]]), torch.tensor([1, 0, 1])
    expected = 0.5 * 2.5 + 0.5 * F.cross_entropy(student, targets).item()
    assert loss(io(student), io(teacher), targets).item() == pytest.approx(expected, abs=1e-6)


def test_outputs_with_logits_and_their_own_loss_are_read():
    """Hugging Face models return a ModelOutput with .logits, and .loss when the batch holds the labels."""
    generator = torch.Generator().manual_seed(5)
    student, teacher = torch.randn(4, 3, generator=generator), torch.randn(4, 3, generator=generator)
    own_loss = torch.tensor(2.0)
    loss = hinge_loss(max_temperature=2, psi={'value': 0.25})
    loss.set_epoch(1, 2)
    hf_student, hf_teacher = SimpleNamespace(logits=student, loss=own_loss), SimpleNamespace(logits=teacher)
    expected = 0.75 * loss.objective.hinge(student, teacher) + 0.25 * own_loss
    assert loss(io(hf_student), io(hf_teacher), None).item() == pytest.approx(expected.item(), abs=1e-6)
    targets = torch.tensor([0, 1, 2, 0])  # with labels, the loss computes its own cross-entropy
    assert loss(io(hf_student), io(hf_teacher), targets).item() == pytest.approx(
        loss(io(student), io(teacher), targets).item())
    annealing = AnnealingKDLoss(**PATHS, max_temperature=2)
    annealing.set_epoch(0, 2)
    assert annealing(io(hf_student), io(hf_teacher)).item() == pytest.approx(F.mse_loss(student, teacher / 2).item())


def test_psi_per_iteration_moves_within_the_epoch_while_t_moves_per_epoch():
    loss = hinge_loss(max_temperature=2, psi={'ramp_epochs': 1, 'per_iteration': True})
    assert loss.per_iteration
    student, teacher, targets = torch.randn(4, 3), torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    states = []
    for epoch in range(2):
        loss.set_epoch(epoch, 2, iterations_per_epoch=3)
        for _ in range(3):
            states.append(loss.state())
            loss(io(student), io(teacher), targets)
    assert [s['psi'] for s in states] == pytest.approx([0, 1 / 3, 2 / 3, 1, 1, 1])
    assert [s['T'] for s in states] == [2, 2, 2, 1, 1, 1]


@pytest.mark.parametrize('reduction, annealing_reduction', [('mean', 'mean'), ('sum', 'batchmean')])
def test_margin_zero_and_eq6_step_reproduce_annealing_kd(reduction, annealing_reduction):
    """Eq. 6: m = 0, phi on the teacher, psi = 0 for the n1 Stage-I epochs and 1 after: Annealing-KD's two stages."""
    stage1, stage2, max_temperature = 8, 3, 4
    generator = torch.Generator().manual_seed(6)
    student, teacher = torch.randn(16, 10, generator=generator) * 3, torch.randn(16, 10, generator=generator) * 3
    targets = torch.randint(0, 10, (16,), generator=generator)
    continuation = hinge_loss(max_temperature=max_temperature, margin=0.0, psi=psi_step(stage1),
                              distance_reduction=reduction, temperature_span=f'{stage1}/{stage1 + stage2}')
    annealing = AnnealingKDLoss(**PATHS, max_temperature=max_temperature, reduction=annealing_reduction)
    for epoch in range(stage1 + stage2):
        state = continuation.set_epoch(epoch, stage1 + stage2)
        value = continuation(io(student), io(teacher), targets).item()
        if epoch < stage1:
            assert annealing.set_epoch(epoch, stage1)['T'] == state['T'] and state['psi'] == 0.0
            assert value == pytest.approx(annealing(io(student), io(teacher)).item(), abs=1e-6, rel=1e-6)
        else:
            assert state == {'T': 1, 'phi': 1.0, 'psi': 1.0}
            assert value == pytest.approx(F.cross_entropy(student, targets).item(), abs=1e-6)


@pytest.mark.parametrize('build', [
    lambda: AnnealingKDLoss(**PATHS, max_temperature=2),
    lambda: hinge_loss(max_temperature=2),
    lambda: ContinuationKDLoss(**PATHS, objective='kd', temperature=4.0, alpha=0.5),
    lambda: get_mid_level_loss({'key': 'KDLoss', 'kwargs': dict(PATHS, temperature=4.0, alpha=0.5)},
                               {'key': 'AnnealedTeacherLossWrapper', 'kwargs': {
                                   'teacher_module_path': '.', 'teacher_module_io': 'output', 'max_temperature': 2}}),
])
def test_an_unpositioned_schedule_refuses_to_train(build):
    loss = build()
    student, teacher, targets = torch.randn(4, 3), torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    with pytest.raises(RuntimeError, match=r"called in training mode before its schedule was positioned: add "
                                           r"pre_epoch_process: 'advance_loss_schedules' to the stage config"):
        loss(io(student), io(teacher), targets)
    loss.eval()  # evaluation at the start of the schedule is allowed
    assert torch.isfinite(loss(io(student), io(teacher), targets))
    loss.train()
    loss.set_epoch(0, 4)
    assert torch.isfinite(loss(io(student), io(teacher), targets))


def test_bad_continuation_kwargs_are_named():
    with pytest.raises(ValueError, match="unexpected keyword argument 'margn'"):
        hinge_loss(max_temperature=10, margn=1.0)
    with pytest.raises(ValueError, match='schedule applies to the lambda objectives'):
        hinge_loss(max_temperature=10, schedule={'shape': 'linear'})
    with pytest.raises(ValueError, match=r'margin must be a finite number >= 0'):
        hinge_loss(max_temperature=10, margin=-0.5)
    with pytest.raises(ValueError, match=r"psi: unknown field\(s\) \['ramp_epoch'\]"):
        hinge_loss(max_temperature=10, psi={'ramp_epoch': 150})
    with pytest.raises(ValueError, match='train.num_epochs=30 is shorter than the 40 levels of max_temperature'):
        hinge_loss(max_temperature=40, psi=PSI_EQ8).check_stage(30, field='train.num_epochs')
    with pytest.raises(ValueError, match='is longer than the stage: with train.num_epochs=3'):
        hinge_loss(max_temperature=2).check_stage(3, field='train.num_epochs')


def test_the_former_objective_name_target_builds_label_weight_with_its_lambda_schedule():
    loss = ContinuationKDLoss(**PATHS, objective='target', temperature=4.0, alpha=0.5, schedule={'shape': 'cosine'})
    assert loss.objective_name == 'label_weight' and type(loss.objective) is LabelWeightContinuation
    assert loss.schedule.shape == 'cosine' and loss.per_iteration is False
    assert loss.set_progress(0, 10)['alpha'] == 0.0 and loss.set_progress(9, 10)['alpha'] == 0.5
