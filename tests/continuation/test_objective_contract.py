"""The contract of every registered objective, parametrised over the registry (as timm's tests over ``list_models``).

Each objective is built from the YAML example of its class docstring (``ContinuationKDLoss`` kwargs), positioned the
way it declares (``lambda_schedule``) at the first and the last epoch of a run, and checked for finite values and
gradients, a ``state()`` that follows the position, and its ``end_identity`` at the end of the run.
"""
import inspect
import math
import os
import re
import textwrap

import pytest
import torch
import torch.nn.functional as F
import yaml
from torchdistill.losses.mid_level import KDLoss

from continuation import END_IDENTITIES, OBJECTIVE_ALIASES, OBJECTIVES, ContinuationObjective, \
    LabelWeightContinuation, build_objective, objective_name, register_objective

NUM_EPOCHS = 20  # at least every example's max_temperature: each temperature level gets an epoch
README = os.path.join(os.path.dirname(__file__), '..', '..', 'README.md')


def docstring_example(cls):
    """The kwargs of the ``.. code-block:: yaml`` example in ``cls``'s docstring."""
    found = re.search(r'\.\. code-block:: yaml\n\n((?: {4}.*\n?|\n)+)', inspect.getdoc(cls) + '\n')
    assert found, f'{cls.__name__} has no YAML example in its docstring'
    return yaml.safe_load(textwrap.dedent(found.group(1)))


def positioned(name, epoch):
    """The objective ``name`` built from its docstring example, at ``epoch`` of a run of NUM_EPOCHS."""
    kwargs = docstring_example(OBJECTIVES[name])
    assert kwargs.pop('objective') == name, 'the example names another objective'
    spec = kwargs.pop('schedule', None)  # ContinuationKDLoss's, not the objective's
    objective = build_objective(name, **kwargs)
    schedule, _ = objective.lambda_schedule(spec)
    if schedule is None:
        objective.set_position(epoch, NUM_EPOCHS)
    else:
        objective.set_lambda(schedule(epoch, NUM_EPOCHS))
    return objective


def logits(scale=3.0, seed=0):
    generator = torch.Generator().manual_seed(seed)
    student = (torch.randn(8, 5, generator=generator) * scale).requires_grad_()
    teacher = (torch.randn(8, 5, generator=generator) * scale).requires_grad_()
    return student, teacher, torch.randint(0, 5, (8,), generator=generator)


@pytest.mark.parametrize('epoch', [0, NUM_EPOCHS - 1])
@pytest.mark.parametrize('scale', [3.0, 1e4])
@pytest.mark.parametrize('name', sorted(OBJECTIVES))
def test_values_and_gradients_are_finite_at_both_ends(name, epoch, scale):
    objective = positioned(name, epoch)
    student, teacher, targets = logits(scale)
    loss = objective(student, teacher, targets)
    loss.backward()
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert torch.isfinite(student.grad).all() and student.grad.abs().sum() > 0
    assert teacher.grad is None  # the teacher is never trained through the loss


@pytest.mark.parametrize('name', sorted(OBJECTIVES))
def test_state_follows_the_position(name):
    first, last = positioned(name, 0).state(), positioned(name, NUM_EPOCHS - 1).state()
    assert first and first.keys() == last.keys()
    assert all(isinstance(value, (int, float)) and math.isfinite(value) for value in [*first.values(), *last.values()])
    assert first != last


def end_reference(identity, objective, student, teacher, targets):
    """What an objective with ``end_identity`` equals at the end of its schedule, computed independently."""
    if identity == 'kd':
        loss = KDLoss('.', 'output', '.', 'output', temperature=objective.target_temperature,
                      alpha=objective.target_alpha)
        return loss({'.': {'output': student}}, {'.': {'output': teacher}}, targets)
    if identity == 'logit_matching':
        squared = (student - teacher) ** 2
        return {'mean': squared.mean(), 'batchmean': squared.sum() / len(student), 'sum': squared.sum()}[
            objective.reduction]
    assert identity == 'label_loss', f'no reference for {identity!r}: add one here'
    return F.cross_entropy(student, targets)


@pytest.mark.parametrize('name', sorted(OBJECTIVES))
def test_identity_at_the_end_of_the_schedule(name):
    identity = OBJECTIVES[name].end_identity
    if identity is None:
        pytest.skip(f'{name} declares no end identity')
    objective = positioned(name, NUM_EPOCHS - 1)
    student, teacher, targets = logits()
    expected = end_reference(identity, objective, student, teacher, targets)
    assert objective(student, teacher, targets).item() == pytest.approx(expected.item(), rel=1e-6, abs=1e-6)


def test_end_identities_are_documented():
    assert {cls.end_identity for cls in OBJECTIVES.values()} - {None} <= set(END_IDENTITIES)


def test_the_former_name_target_still_builds_label_weight():
    assert OBJECTIVE_ALIASES == {'target': 'label_weight'} and objective_name('target') == 'label_weight'
    objective = build_objective('target', temperature=4.0, alpha=0.5, direction='label_to_teacher')
    assert type(objective) is LabelWeightContinuation and objective.initial_alpha == 1.0


def test_the_registry_refuses_a_taken_name():
    with pytest.raises(KeyError, match="objective 'kd' is already registered"):
        register_objective('kd')(type('Again', (ContinuationObjective,), {}))
    with pytest.raises(KeyError, match="objective 'target' is already registered"):
        register_objective('new_name', aliases=('target',))(type('Again', (ContinuationObjective,), {}))
    assert 'new_name' not in OBJECTIVES


def test_readme_table_lists_the_registry():
    with open(README, encoding='utf-8') as fp:
        text = fp.read()
    table = text[text.index('| objective (`objective:`) |'):]
    table = table[:table.index('\n\n')]
    names = re.findall(r'^\| `(\w+)`', table, flags=re.MULTILINE)
    assert sorted(names) == sorted(OBJECTIVES)
