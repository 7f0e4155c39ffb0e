"""The published Continuation-KD objective (Eqs. 3-5) on hand-computed values, its schedules and its errors."""
import math

import pytest
import torch
import torch.nn.functional as F

from continuation import PSI_EQ7, PSI_EQ8, AnnealedHingeKD, build_objective

# Three samples, two logits. At T_max = 2 and T = 2, phi = 0.5: the annealed teacher is [[1, 0], [0, 2], [.5, .5]],
# the squared errors are [0, 4], [9, 4], [.25, .25]: d = 2, 6.5, 0.25 ('mean') or 4, 13, 0.5 ('sum').
# With m = 1 and the margin annealed too, m * phi = 0.5: samples 0 and 1 lie outside the margin, sample 2 inside.
STUDENT = [[1.0, 2.0], [3.0, 4.0], [0.0, 0.0]]
TEACHER = torch.tensor([[2.0, 0.0], [0.0, 4.0], [1.0, 1.0]])
LABELS = torch.tensor([1, 0, 1])
HINGE_MEAN = (1.5 + 6.0 + 0.0) / 3
HINGE_SUM = (3.5 + 12.5 + 0.0) / 3
CE = (math.log(1 + math.exp(-1)) + math.log(1 + math.e) + math.log(2)) / 3  # log-sum-exp minus the label logit


def objective_at(psi, **kwargs):
    objective = AnnealedHingeKD(2, margin=1.0, psi={'value': psi}, **kwargs)
    objective.set_position(0, 2)  # T = 2
    assert (objective.temperature, objective.phi, objective.psi) == (2, 0.5, psi)
    return objective


def student(requires_grad=False):
    return torch.tensor(STUDENT, requires_grad=requires_grad)


@pytest.mark.parametrize('psi, reduction, expected', [
    (0.0, 'mean', HINGE_MEAN), (0.5, 'mean', 0.5 * HINGE_MEAN + 0.5 * CE), (1.0, 'mean', CE),
    (0.0, 'sum', HINGE_SUM), (0.5, 'sum', 0.5 * HINGE_SUM + 0.5 * CE), (1.0, 'sum', CE),
])
def test_loss_by_hand(psi, reduction, expected):
    objective = objective_at(psi, distance_reduction=reduction)
    assert objective(student(), TEACHER, LABELS).item() == pytest.approx(expected, abs=1e-6)


def test_distances_and_hinge_by_hand():
    objective = objective_at(0.0)
    assert objective.distances(student(), TEACHER).tolist() == pytest.approx([2.0, 6.5, 0.25])
    assert objective.hinge(student(), TEACHER).item() == pytest.approx(2.5)


def test_samples_inside_the_margin_get_no_gradient_from_the_hinge():
    objective, logits = objective_at(0.0), student(requires_grad=True)
    teacher = TEACHER.clone().requires_grad_()
    objective(logits, teacher, LABELS).backward()
    # d/dz of mean_i (mean_c (z - phi t)^2 - m phi) = 2 (z - phi t) / (C B) outside the margin, 0 inside
    assert torch.allclose(logits.grad, torch.tensor([[0.0, 2 / 3], [1.0, 2 / 3], [0.0, 0.0]]))
    assert torch.equal(logits.grad[2], torch.zeros(2))  # exactly zero inside the margin
    assert teacher.grad is None  # the teacher is detached
    objective = objective_at(0.5)  # inside the margin, only the label term moves the sample
    logits = student(requires_grad=True)
    objective(logits, TEACHER, LABELS).backward()
    label_only = student(requires_grad=True)
    (0.5 * F.cross_entropy(label_only, LABELS)).backward()
    assert torch.allclose(logits.grad[2], label_only.grad[2])


@pytest.mark.parametrize('anneal_teacher, anneal_margin, expected', [
    # teacher x 1: squared errors [1, 4], [9, 0], [1, 1] -> d = 2.5, 4.5, 1; margin m x 0.5 or m x 1
    (False, True, (2.0 + 4.0 + 0.5) / 3),
    (False, False, (1.5 + 3.5 + 0.0) / 3),
    (True, False, (1.0 + 5.5 + 0.0) / 3),  # d = 2, 6.5, 0.25 against m = 1
    (True, True, HINGE_MEAN),
])
def test_table7_switches_choose_where_phi_applies(anneal_teacher, anneal_margin, expected):
    objective = objective_at(0.0, anneal_teacher=anneal_teacher, anneal_margin=anneal_margin)
    assert objective.teacher_scale == (0.5 if anneal_teacher else 1.0)
    assert objective.margin_scale == (0.5 if anneal_margin else 1.0)
    assert objective(student(), TEACHER, LABELS).item() == pytest.approx(expected, abs=1e-6)


def test_regression_uses_mse_to_the_label():
    objective = AnnealedHingeKD(1, margin=0.5, psi={'value': 0.5}, task='regression')
    objective.set_position(0, 1)  # T_max = 1: phi = 1
    logits, teacher, labels = torch.tensor([[1.0], [2.0]]), torch.tensor([[2.0], [2.0]]), torch.tensor([0.0, 4.0])
    # d = 1, 0 -> hinge 0.5, 0 -> 0.25; MSE to the label (1 + 4) / 2 = 2.5
    assert objective(logits, teacher, labels).item() == pytest.approx(0.5 * 0.25 + 0.5 * 2.5)


def test_a_precomputed_label_loss_replaces_the_labels():
    objective = objective_at(0.5)
    given = torch.tensor(3.0)
    assert objective(student(), TEACHER, None, label_loss=given).item() == pytest.approx(0.5 * HINGE_MEAN + 1.5)
    assert objective_at(0.0)(student(), TEACHER, None).item() == pytest.approx(HINGE_MEAN)  # psi 0: no labels
    with pytest.raises(ValueError, match='psi > 0 needs the labels'):
        objective(student(), TEACHER, None)


def schedule(num_epochs, max_temperature, psi):
    objective = AnnealedHingeKD(max_temperature, psi=psi)
    objective.check_num_epochs(num_epochs)
    states = []
    for epoch in range(num_epochs):
        objective.set_position(epoch, num_epochs)
        states.append(objective.state())
    return [s['T'] for s in states], [s['phi'] for s in states], [s['psi'] for s in states]


def algorithm1_literal(num_epochs, max_temperature):
    """Algorithm 1 read literally: k = floor(n / T_max); T -= 1 whenever i mod k == 0, i = 1..n (before epoch i)."""
    period = num_epochs // max_temperature
    return [max_temperature - i // period for i in range(1, num_epochs + 1)]


def test_cifar_schedule_n200_tmax20_eq7():
    temperatures, phis, psis = schedule(200, 20, PSI_EQ7)
    assert temperatures == [20 - e // 10 for e in range(200)]  # ten epochs per level, T = 1 in the last ten
    assert phis == pytest.approx([1 - (t - 1) / 20 for t in temperatures], abs=1e-12)
    assert psis == pytest.approx([min(1.0, e / 150) for e in range(200)], abs=1e-12, rel=0)
    assert min(algorithm1_literal(200, 20)) == 0 and min(temperatures) == 1  # the literal reading overshoots


def test_glue_schedule_n30_tmax10_eq8():
    temperatures, phis, psis = schedule(30, 10, PSI_EQ8)
    assert temperatures == [10 - e // 3 for e in range(30)]
    assert phis[0] == pytest.approx(0.1) and phis[-1] == 1.0
    assert psis == pytest.approx([e / 40 if e < 20 else 1.0 for e in range(30)], abs=1e-12, rel=0)
    assert algorithm1_literal(30, 10)[-1] == 0 and temperatures[-1] == 1


def test_uneven_schedule_n25_tmax10_stays_in_range():
    temperatures, _, psis = schedule(25, 10, PSI_EQ7)
    assert temperatures == [10, 10, 10, 9, 9, 8, 8, 8, 7, 7, 6, 6, 6, 5, 5, 4, 4, 4, 3, 3, 2, 2, 2, 1, 1]
    assert psis == pytest.approx([min(1.0, e / 18.75) for e in range(25)], abs=1e-12, rel=0)
    assert min(algorithm1_literal(25, 10)) == -2  # k = 2 steps T twelve times
    assert schedule(25, 10, PSI_EQ8)[2][16:18] == pytest.approx([0.48, 1.0])


def test_tmax_one_is_logit_matching_throughout():
    temperatures, phis, _ = schedule(3, 1, PSI_EQ8)
    assert temperatures == [1, 1, 1] and phis == [1.0, 1.0, 1.0]


def test_temperature_span_anneals_over_the_first_part_only():
    temperatures, _, _ = schedule(6, 2, {'switch_epochs': 4})
    assert temperatures == [2, 2, 2, 1, 1, 1]
    objective = AnnealedHingeKD(2, psi={'switch_epochs': 4}, temperature_span='2/3')
    positions = []
    for epoch in range(6):
        objective.set_position(epoch, 6)
        positions.append((objective.temperature, objective.psi))
    assert positions == [(2, 0.0), (2, 0.0), (1, 0.0), (1, 0.0), (1, 1.0), (1, 1.0)]


@pytest.mark.parametrize('kwargs, message', [
    ({'max_temperature': 0}, 'max_temperature must be an integer >= 1'),
    ({'max_temperature': 2.5}, 'max_temperature must be an integer >= 1'),
    ({'margin': -1.0}, 'margin must be a finite number >= 0, got -1.0'),
    ({'margin': True}, 'margin must be a finite number >= 0'),
    ({'margin': float('inf')}, 'margin must be a finite number >= 0'),
    ({'distance_reduction': 'l1'}, r"distance_reduction must be one of \['mean', 'sum'\], got 'l1'"),
    ({'anneal_teacher': 'yes'}, 'anneal_teacher must be true or false'),
    ({'anneal_margin': 1}, 'anneal_margin must be true or false'),
    ({'temperature_span': 0}, r'temperature_span must lie in \(0, 1\]'),
    ({'temperature_span': 1.5}, r'temperature_span must lie in \(0, 1\]'),
    ({'task': 'ranking'}, r"task must be one of \['classification', 'regression'\]"),
    ({'psi': {'value': 2}}, r'psi.value must be a number in \[0, 1\]'),
])
def test_bad_values_fail_with_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AnnealedHingeKD(**{'max_temperature': 10, **kwargs})


def test_bad_positions_and_stages_fail_with_the_field():
    objective = AnnealedHingeKD(10, psi=PSI_EQ8)
    with pytest.raises(ValueError, match='train.num_epochs=5 is shorter than the 10 levels of max_temperature'):
        objective.check_num_epochs(5, field='train.num_epochs')
    with pytest.raises(ValueError, match=r'train.num_epochs=12 \(temperature_span 1/2 of it: 6 epochs\) is shorter'):
        AnnealedHingeKD(10, psi=PSI_EQ8, temperature_span='1/2').check_num_epochs(12, field='train.num_epochs')
    with pytest.raises(ValueError, match='is longer than the stage: with num_epochs=2'):
        AnnealedHingeKD(1, psi=PSI_EQ8).check_num_epochs(2)
    with pytest.raises(ValueError, match=r'epoch must lie in \[0, 30\), got 30'):
        objective.set_position(30, 30)
    with pytest.raises(ValueError, match=r'psi must lie in \[0, 1\]'):
        objective.set_psi(1.5)
    with pytest.raises(ValueError, match="unexpected keyword argument 'margn'"):
        build_objective('annealed_hinge', max_temperature=10, margn=1.0)


@pytest.mark.parametrize('psi', [0.0, 0.5, 1.0])
def test_extreme_logits_keep_gradients_finite(psi):
    objective = AnnealedHingeKD(10, psi={'value': psi})
    logits = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0]], requires_grad=True)
    loss = objective(logits, torch.tensor([[-1e4, 1e4, 0.0], [1e4, -1e4, 0.0]]), torch.tensor([0, 2]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


def test_the_teacher_is_read_until_psi_reaches_one():
    objective = AnnealedHingeKD(10, psi=PSI_EQ8)  # psi = e / 40 for e < 20, then 1, over 30 epochs
    reads = []
    for epoch in range(30):
        objective.set_position(epoch, 30)
        reads.append(objective.reads_teacher)
    assert reads == [True] * 20 + [False] * 10
    assert not AnnealedHingeKD(1, psi={'value': 1.0}).reads_teacher
    student = torch.randn(4, 3)
    labels = torch.tensor([0, 1, 2, 0])
    assert torch.equal(objective(student, None, labels), F.cross_entropy(student, labels))  # no teacher needed
