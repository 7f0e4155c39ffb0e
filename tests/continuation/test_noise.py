import pytest
import torch

from continuation import SoftTargetKD, TeacherNoiseMitigation

LABELS = torch.tensor([0, 1, 2, 3, 0, 1])
CORRUPTED = torch.tensor([False, False, True, False, True, False])
WRONG_CLASS = 3


def teacher_logits():
    logits = torch.full((6, 4), -2.0)
    logits[torch.arange(6), LABELS] = 4.0
    logits[CORRUPTED] = -2.0
    logits[CORRUPTED, WRONG_CLASS] = 6.0  # the teacher is confidently wrong on samples 2 and 4
    return logits


def student_gradient(objective, lam):
    objective.set_lambda(lam)
    student = torch.zeros(6, 4, requires_grad=True)
    objective(student, teacher_logits(), LABELS).backward()
    return student.grad


def test_flags_wrong_and_unsure_teacher_outputs():
    assert torch.equal(TeacherNoiseMitigation().flags(teacher_logits(), LABELS), CORRUPTED)
    unsure = teacher_logits()
    unsure[0] = torch.tensor([1.0, 0.9, 0.8, 0.7])  # right but p(label) ~ 0.29 < 0.5
    flags = TeacherNoiseMitigation(threshold=0.5).flags(unsure, LABELS)
    assert flags.tolist() == [True, False, True, False, True, False]


@pytest.mark.parametrize('mode', ['mask', 'correct'])
def test_gradient_on_corrupted_samples_points_to_the_label(mode):
    plain = student_gradient(SoftTargetKD(2.0, alpha=0.0), 1.0)
    mitigated = student_gradient(SoftTargetKD(2.0, alpha=0.0, noise_mitigation={'mode': mode}), 1.0)
    for sample in CORRUPTED.nonzero().flatten().tolist():
        label = LABELS[sample].item()
        # gradient descent moves logits along -grad
        assert -plain[sample, WRONG_CLASS] > 0  # plain KD pulls the student to the teacher's mistake
        assert -mitigated[sample, label] > 0 and -mitigated[sample, WRONG_CLASS] < 0
        assert torch.argmax(-mitigated[sample]).item() == label
    clean = ~CORRUPTED
    assert torch.allclose(plain[clean], mitigated[clean], atol=1e-7)  # unflagged samples untouched


def test_mask_mode_equals_cross_entropy_on_flagged_samples_at_full_strength():
    objective = SoftTargetKD(2.0, alpha=0.0, noise_mitigation={'mode': 'mask'})
    objective.set_lambda(1.0)
    student = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    only_flagged = objective(student[CORRUPTED], teacher_logits()[CORRUPTED], LABELS[CORRUPTED])
    expected = torch.nn.functional.cross_entropy(student[CORRUPTED], LABELS[CORRUPTED])
    assert only_flagged.item() == pytest.approx(expected.item(), abs=1e-6)


def test_strength_follows_lambda():
    noise = TeacherNoiseMitigation(max_strength=0.8)
    assert noise.strength(0.0) == 0.0 and noise.strength(0.5) == pytest.approx(0.4)
    assert TeacherNoiseMitigation(max_strength=0.8, follow_schedule=False).strength(0.0) == pytest.approx(0.8)
    # lambda = 0 with a following strength is plain KD
    plain = student_gradient(SoftTargetKD(2.0, alpha=0.3), 0.0)
    mitigated = student_gradient(SoftTargetKD(2.0, alpha=0.3, noise_mitigation={'mode': 'correct'}), 0.0)
    assert torch.allclose(plain, mitigated, atol=1e-7)


def test_bad_noise_configs_name_the_field():
    with pytest.raises(ValueError, match=r'noise_mitigation.threshold must be a number in \[0, 1\], got 1.5'):
        TeacherNoiseMitigation(threshold=1.5)
    with pytest.raises(ValueError, match=r"noise_mitigation.mode must be one of \['mask', 'correct'\]"):
        TeacherNoiseMitigation(mode='drop')
    with pytest.raises(ValueError, match=r'noise_mitigation.max_strength must be a number in \[0, 1\]'):
        TeacherNoiseMitigation(max_strength=-0.1)
    with pytest.raises(ValueError, match='needs the hard labels'):
        SoftTargetKD(2.0, 0.0, noise_mitigation={})(torch.zeros(2, 3), torch.zeros(2, 3), None)
