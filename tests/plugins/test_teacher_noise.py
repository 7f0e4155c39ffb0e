"""The benchmark's noisy teacher: which samples, which shifts, and the rolled logits."""
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler

from plugins.datasets.digits import digits_split
from plugins.datasets.in_memory import collate_tensor_rows
from plugins.teacher_noise import NoisyTeacherWrapper, TeacherNoiseDatasetWrapper, noise_shifts, shift_logits


def test_a_fixed_fraction_gets_a_shift_in_one_to_c_minus_one_fixed_by_the_seed():
    shifts = noise_shifts(1077, 0.25, 10, seed=3)
    assert int((shifts > 0).sum()) == round(0.25 * 1077) == 269
    assert shifts.min().item() == 0 and 1 <= shifts[shifts > 0].min().item() and shifts.max().item() <= 9
    assert len(torch.unique(shifts[shifts > 0])) == 9  # every shift 1..9 occurs
    assert torch.equal(shifts, noise_shifts(1077, 0.25, 10, seed=3))
    assert not torch.equal(shifts > 0, noise_shifts(1077, 0.25, 10, seed=4) > 0)
    assert int((noise_shifts(10, 0.0, 10, seed=0) > 0).sum()) == 0
    assert int((noise_shifts(10, 1.0, 10, seed=0) > 0).sum()) == 10


@pytest.mark.parametrize('kwargs, message', [({'fraction': 1.5}, 'fraction must be a number in'),
                                             ({'num_classes': 1}, 'num_classes must be an integer >= 2')])
def test_bad_noise_settings_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        noise_shifts(**dict({'num_samples': 5, 'fraction': 0.5, 'num_classes': 3, 'seed': 0}, **kwargs))


def test_shift_rolls_each_row_by_its_own_shift():
    logits = torch.tensor([[0.0, 1.0, 2.0, 3.0], [5.0, 0.0, 0.0, 0.0], [1.0, 9.0, 3.0, 4.0]])
    rolled = shift_logits(logits, torch.tensor([0, 1, 3]))
    # out[i, c] = logits[i, (c - s_i) mod 4]
    assert torch.equal(rolled, torch.tensor([[0.0, 1.0, 2.0, 3.0], [0.0, 5.0, 0.0, 0.0], [9.0, 3.0, 4.0, 1.0]]))
    assert rolled[2].argmax().item() == (logits[2].argmax().item() + 3) % 4  # the arg-max moves s classes on


def test_dataset_wrapper_draws_from_the_run_seed_and_serves_shifts_per_sample_and_per_batch():
    data = digits_split('train')
    torch.manual_seed(7)  # what the runner's set_seed does
    wrapper = TeacherNoiseDatasetWrapper(data, fraction=0.25, num_classes=10)
    assert wrapper.seed == 7 and torch.equal(wrapper.shifts, noise_shifts(len(data), 0.25, 10, 7))
    sample, target, supp = wrapper[11]
    assert torch.equal(sample, data[11][0]) and supp == {'teacher_noise_shift': int(wrapper.shifts[11])}
    loader = DataLoader(wrapper, batch_size=64, sampler=RandomSampler(data), collate_fn=collate_tensor_rows)
    per_sample = DataLoader(wrapper, batch_size=64, sampler=RandomSampler(data))
    torch.manual_seed(0)
    fast = next(iter(loader))
    torch.manual_seed(0)
    slow = next(iter(per_sample))
    assert torch.equal(fast[0], slow[0]) and torch.equal(fast[2]['teacher_noise_shift'],
                                                         slow[2]['teacher_noise_shift'])
    assert TeacherNoiseDatasetWrapper(data, 0.25, 10, seed=7).shifts.equal(wrapper.shifts)


def test_noisy_teacher_rolls_the_flagged_samples_and_needs_the_shift_field():
    teacher = nn.Linear(3, 3, bias=False)
    with torch.no_grad():
        teacher.weight.copy_(torch.eye(3))
    wrapper = NoisyTeacherWrapper(teacher)
    inputs = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    output = wrapper(inputs, None, {'teacher_noise_shift': torch.tensor([0, 2])})
    assert torch.equal(output, torch.tensor([[1.0, 2.0, 3.0], [5.0, 6.0, 4.0]]))
    with pytest.raises(ValueError, match="TeacherNoiseDatasetWrapper on the training loader"):
        wrapper(inputs, None, {})
