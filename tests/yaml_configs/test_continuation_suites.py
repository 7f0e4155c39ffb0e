"""The Continuation-KD methods of the CIFAR and GLUE suites: the published method, Table 7, our variant."""
import copy
import os

import pytest
from torchdistill.losses.registry import get_high_level_loss

import plugins  # noqa: F401  (registers the losses)
from benchmarks.configs import apply_dotted, read_structure
from benchmarks.suites.cifar import build_cifar10
from benchmarks.suites.glue import build_glue
from plugins.config_util import has_dotted
from plugins.losses.scheduled import find_scheduled_losses

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TABLE7 = ('continuation_kd_psi_only', 'continuation_kd_phi_teacher', 'continuation_kd_phi_margin')


@pytest.fixture(autouse=True)
def _keep_environment(monkeypatch):
    for variable in ('KD_DATA_ROOT', 'KD_DOWNLOAD', 'KD_GLUE_DATA'):
        monkeypatch.setenv(variable, 'unchanged')  # restored after the test


def scheduled_losses(suite, method, quick):
    """The scheduled losses of ``method``'s criterion as the harness would run it, checked against its stage."""
    spec = suite.methods[method]
    structure = read_structure(os.path.join(REPO, spec.config))
    suite_keys = {key: value for key, value in (suite.quick_overrides if quick else {}).items()
                  if has_dotted(structure, key)}
    train = apply_dotted(structure, {**suite_keys, **spec.overrides})['train']
    criterion = get_high_level_loss(copy.deepcopy(train['criterion']))
    losses = find_scheduled_losses(criterion)
    for loss in losses:
        loss.check_stage(train['num_epochs'], field='train.num_epochs')
    return losses, train['num_epochs'], criterion


@pytest.mark.parametrize('build, options', [
    (build_cifar10, {}), (build_cifar10, {'family': 'cnn'}),
    (build_glue, {'task': 'rte'}), (build_glue, {'task': 'stsb', 'family': 'bert'}),
])
@pytest.mark.parametrize('quick', [False, True])
def test_published_method_ablations_and_our_variant(build, options, quick):
    suite = build(dict(options, ablations='true'), quick=quick)
    continuation = [name for name in suite.methods if name.startswith('continuation_kd')]
    # our variant needs each sample's label as targets; GLUE batches hold their labels (the text script's schema)
    glue = build is build_glue
    assert continuation == ['continuation_kd', *TABLE7] + ([] if glue else ['continuation_kd_temperature'])
    assert all(suite.methods[name].group == 'ablation' for name in continuation[1:])
    expected = {'continuation_kd': (True, True, True), 'continuation_kd_psi_only': (False, False, True),
                'continuation_kd_phi_teacher': (True, False, False), 'continuation_kd_phi_margin': (False, True, False)}
    for method, (teacher, margin, dynamic) in expected.items():
        (loss,), epochs, _ = scheduled_losses(suite, method, quick)
        objective = loss.objective
        assert loss.objective_name == 'annealed_hinge'
        assert (objective.anneal_teacher, objective.anneal_margin) == (teacher, margin), method
        assert objective.psi_schedule.dynamic == (dynamic and (not quick or epochs > 1)), method
        if not dynamic:
            assert objective.psi_schedule.value == 0.5
        if quick:
            assert epochs <= 2 and objective.max_temperature == epochs
    if not glue:
        losses, _, criterion = scheduled_losses(suite, 'continuation_kd_temperature', quick)
        assert losses[0].objective_name == 'temperature' and sorted(criterion.term_dict) == ['continuation_kd']


@pytest.mark.parametrize('build', [build_cifar10, lambda options, quick: build_glue(options, quick)])
def test_ablations_are_off_by_default_and_the_option_is_checked(build):
    suite = build({}, quick=False)
    assert [name for name in suite.methods if name.startswith('continuation_kd')] == ['continuation_kd']
    assert suite.methods['continuation_kd'].overrides == {}
    with pytest.raises(ValueError, match='option ablations must be true or false'):
        build({'ablations': 'maybe'}, quick=False)


def test_quick_glue_run_is_one_epoch_with_a_fixed_psi_and_cifar_two_with_eq6():
    (loss,), epochs, _ = scheduled_losses(build_glue({'task': 'mrpc'}, quick=True), 'continuation_kd', True)
    assert epochs == 1 and loss.objective.psi_schedule.spec == {'value': 0.5}
    (loss,), epochs, _ = scheduled_losses(build_cifar10({}, quick=True), 'continuation_kd', True)
    assert [loss.set_epoch(epoch, epochs) for epoch in range(epochs)] == [
        {'T': 2, 'phi': 0.5, 'psi': 0.0}, {'T': 1, 'phi': 1.0, 'psi': 1.0}]


def test_paper_reference_numbers_are_in_the_descriptions():
    assert 'continuation_kd 90.21' in build_cifar10({}, quick=False).description
    assert 'continuation_kd 77.62' in build_glue({'task': 'rte'}).description
