import re

import pytest
import torch
import torch.nn.functional as F
from torchdistill.losses.mid_level import KDLoss

from continuation import OBJECTIVES, LabelWeightContinuation, LogitAnnealing, SoftTargetKD, \
    TemperatureContinuation, build_objective

STUDENT = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
TEACHER = torch.tensor([[2.0, 0.0], [0.0, 4.0]])


def torchdistill_kd(student, teacher, targets, temperature, alpha):
    loss = KDLoss('.', 'output', '.', 'output', temperature=temperature, alpha=alpha)
    return loss({'.': {'output': student}}, {'.': {'output': teacher}}, targets)


def hand_kd(student, teacher, targets, temperature, alpha):
    """Eq. 1 with torchdistill's convention: alpha * CE + (1 - alpha) * T^2 * KL, batch mean."""
    p_t = torch.softmax(teacher / temperature, dim=1)
    kl = (p_t * (torch.log(p_t) - torch.log_softmax(student / temperature, dim=1))).sum(dim=1).mean()
    return alpha * F.cross_entropy(student, targets) + (1 - alpha) * temperature ** 2 * kl


@pytest.fixture
def logits():
    generator = torch.Generator().manual_seed(0)
    student = torch.randn(16, 10, generator=generator) * 3
    teacher = torch.randn(16, 10, generator=generator) * 3
    targets = torch.randint(0, 10, (16,), generator=generator)
    return student, teacher, targets


def test_logit_annealing_eq3_by_hand():
    # tau_max = 2, lambda = 0 -> T = 2, Phi = 1 - 1/2 = 0.5: target [[1, 0], [0, 2]], errors [[0, 2], [3, 2]]
    loss = LogitAnnealing(2)
    assert loss.temperature == 2 and loss.phi == 0.5
    assert loss(STUDENT, TEACHER).item() == pytest.approx(17 / 4)
    assert LogitAnnealing(2, reduction='batchmean')(STUDENT, TEACHER).item() == pytest.approx(17 / 2)
    assert LogitAnnealing(2, reduction='sum')(STUDENT, TEACHER).item() == pytest.approx(17)
    loss.set_lambda(1.0)  # T = 1, Phi = 1: errors [[-1, 2], [3, 0]]
    assert loss.temperature == 1 and loss.phi == 1.0
    assert loss(STUDENT, TEACHER).item() == pytest.approx(14 / 4)


def test_logit_annealing_equals_authors_mse(logits):
    student, teacher, _ = logits
    loss = LogitAnnealing(10)
    for lam, phi in [(0.0, 0.1), (4 / 9, 0.5), (1.0, 1.0)]:
        loss.set_lambda(lam)
        assert loss.phi == pytest.approx(phi)
        assert loss(student, teacher).item() == pytest.approx(F.mse_loss(student, teacher * phi).item(), abs=1e-6)


def test_logit_annealing_kl_distance(logits):
    student, teacher, _ = logits
    loss = LogitAnnealing(4, distance='kl')
    expected = F.kl_div(torch.log_softmax(student, 1), torch.softmax(teacher * 0.25, 1), reduction='batchmean')
    assert loss(student, teacher).item() == pytest.approx(expected.item(), abs=1e-6)


@pytest.mark.parametrize('alpha', [0.1, 0.5, 0.9])
@pytest.mark.parametrize('temperature', [1.0, 4.0, 20.0])
def test_kl_objectives_equal_torchdistill_kd_at_lambda_one(logits, alpha, temperature):
    student, teacher, targets = logits
    expected = torchdistill_kd(student, teacher, targets, temperature, alpha).item()
    objectives = [SoftTargetKD(temperature, alpha), TemperatureContinuation(temperature, alpha, temperature * 4),
                  LabelWeightContinuation(temperature, alpha, 'teacher_to_label'),
                  LabelWeightContinuation(temperature, alpha, 'label_to_teacher')]
    for objective in objectives:
        objective.set_lambda(1.0)
        assert objective(student, teacher, targets).item() == pytest.approx(expected, abs=1e-6, rel=1e-6)


def test_kl_objectives_equal_their_smoothed_forms_at_lambda_zero(logits):
    student, teacher, targets = logits
    smoothed = TemperatureContinuation(2.0, 0.5, max_temperature=16.0)(student, teacher, targets)
    expected = torchdistill_kd(student, teacher, targets, 16.0, 0.5).item()
    assert smoothed.item() == pytest.approx(expected, rel=1e-6)  # float32 at T^2 = 256
    teacher_only = LabelWeightContinuation(4.0, 0.5, 'teacher_to_label')(student, teacher, targets)
    assert teacher_only.item() == pytest.approx(hand_kd(student, teacher, targets, 4.0, 0.0).item(), abs=1e-6)
    label_only = LabelWeightContinuation(4.0, 0.5, 'label_to_teacher')(student, teacher, targets)
    assert label_only.item() == pytest.approx(F.cross_entropy(student, targets).item(), abs=1e-6)


def test_intermediate_lambda_interpolates_the_parameter(logits):
    student, teacher, targets = logits
    objective = TemperatureContinuation(2.0, 0.5, max_temperature=10.0)
    objective.set_lambda(0.25)  # T = 10 + 0.25 * (2 - 10) = 8
    assert objective(student, teacher, targets).item() == pytest.approx(
        hand_kd(student, teacher, targets, 8.0, 0.5).item(), abs=1e-5)
    objective = LabelWeightContinuation(3.0, 0.8, 'teacher_to_label')
    objective.set_lambda(0.5)  # alpha = 0.4
    assert objective(student, teacher, targets).item() == pytest.approx(
        hand_kd(student, teacher, targets, 3.0, 0.4).item(), abs=1e-5)


@pytest.mark.parametrize('name, kwargs', [
    ('logit_annealing', {'max_temperature': 10}),
    ('logit_annealing', {'max_temperature': 10, 'distance': 'kl'}),
    ('kd', {'temperature': 1e-2, 'alpha': 0.5}),
    ('temperature', {'temperature': 1.0, 'alpha': 0.5, 'max_temperature': 1e3}),
    ('label_weight', {'temperature': 1e3, 'alpha': 0.3}),
    ('kd', {'temperature': 4.0, 'alpha': 0.0, 'noise_mitigation': {'threshold': 0.5, 'mode': 'correct'}}),
])
@pytest.mark.parametrize('lam', [0.0, 1.0])
def test_gradients_finite_for_extreme_logits(name, kwargs, lam):
    objective = build_objective(name, **kwargs)
    objective.set_lambda(lam)
    student = (torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0]])).requires_grad_()
    teacher = torch.tensor([[-1e4, 1e4, 0.0], [1e4, -1e4, 0.0]]).requires_grad_()
    loss = objective(student, teacher, torch.tensor([0, 2]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(student.grad).all()
    assert teacher.grad is None  # gradients reach the student only


def test_bad_objective_configs_fail_with_the_field():
    with pytest.raises(ValueError, match=re.escape(f"objective must be one of {sorted(OBJECTIVES)}, got 'homotopy'")):
        build_objective('homotopy')
    with pytest.raises(ValueError, match="unexpected keyword argument 'temprature'"):
        build_objective('kd', temprature=4.0, alpha=0.5)
    with pytest.raises(ValueError, match=r'max_temperature \(2.0\) must be >= temperature \(4.0\)'):
        TemperatureContinuation(4.0, 0.5, 2.0)
    with pytest.raises(ValueError, match=r'alpha must be a number in \[0, 1\]'):
        SoftTargetKD(4.0, 1.5)
    with pytest.raises(ValueError, match='temperature must be a finite number > 0'):
        SoftTargetKD(0.0, 0.5)
    with pytest.raises(ValueError, match=r"direction must be one of \['label_to_teacher', 'teacher_to_label'\]"):
        LabelWeightContinuation(4.0, 0.5, 'both')
    with pytest.raises(ValueError, match=r"reduction must be one of \['mean', 'batchmean', 'sum'\]"):
        LogitAnnealing(10, reduction='none')
    with pytest.raises(ValueError, match=r'lambda must lie in \[0, 1\]'):
        LogitAnnealing(10).set_lambda(-0.1)

