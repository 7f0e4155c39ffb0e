"""CIFAR-10 and CIFAR-100 suites: the image experiments of the Annealing-KD paper (Tables 1, 2 and 6).

One suite per data set and model family: ``resnet`` (default; teacher ResNet-110, TA ResNet-20, student ResNet-8)
or ``cnn`` (TAKD's plain CNNs: teacher 10 layers, TA 4, student 2), chosen by ``options['family']``. The configs
are ``yaml_configs/<dataset>/...`` (written by ``yaml_configs/cifar_configs.py``). Options:

- ``family``: ``resnet`` or ``cnn``;
- ``data_root``: the folder holding ``cifar-10-batches-py/`` / ``cifar-100-python/`` (sets ``KD_DATA_ROOT``);
- ``download``: true to download missing data (sets ``KD_DOWNLOAD=1``; no download otherwise);
- ``ablations``: true adds the Continuation-KD paper's Table-7 ablations and our older continuation variant
  (``benchmarks/suites/continuation.py``).

The data options are set as environment variables here, before any config is loaded, because the configs
build their datasets while the YAML is read (``!import_call``).
"""
import os

from yaml_configs.cifar_configs import FAMILIES, RUNS, config_file

from .base import ANNEALING_STAGE1_LOSS, MethodSpec, Suite, check_options, parse_flag
from .continuation import CONTINUATION_LOSS, continuation_methods, temperature_variant

__all__ = ['build_cifar10', 'build_cifar100', 'build_cifar', 'FAMILIES', 'PAPER_RESULTS', 'OPTIONS']

OPTIONS = ('family', 'data_root', 'download', 'ablations')
# Test accuracy (%) reported by the Annealing-KD paper (Tables 1 and 2; single runs): the reference for our runs.
PAPER_RESULTS = {
    ('cifar10', 'resnet'): {'teacher': 93.8, 'ta': 92.39, 'scratch': 88.44, 'kd': 88.45, 'takd': 88.47,
                            'annealing_kd': 89.44},
    ('cifar10', 'cnn'): {'teacher': 90.1, 'ta': 82.39, 'scratch': 72.75, 'kd': 72.43, 'takd': 72.62,
                         'annealing_kd': 73.17},
    ('cifar100', 'resnet'): {'teacher': 71.92, 'ta': 67.6, 'scratch': 61.37, 'kd': 61.41, 'takd': 61.82,
                             'annealing_kd': 63.1},
    ('cifar100', 'cnn'): {'teacher': 64.89, 'ta': 60.73, 'scratch': 51.35, 'kd': 51.62, 'takd': 51.85,
                          'annealing_kd': 53.35},
}
# Continuation-KD paper (Tables 1-2; same baselines), test accuracy %: only the ResNet family was reported.
CONTINUATION_PAPER_RESULTS = {('cifar10', 'resnet'): 90.21, ('cifar100', 'resnet'): 64.2}
QUICK_EPOCHS = 2


def _configure_data(options):
    check_options('CIFAR', options, OPTIONS)
    if options.get('data_root') is not None:
        os.environ['KD_DATA_ROOT'] = os.path.expanduser(str(options['data_root']))
    if options.get('download') is not None:
        os.environ['KD_DOWNLOAD'] = '1' if parse_flag(options['download'], 'download') else '0'


# --quick: a few epochs per run (a smoke test, not a result). The suite-wide key reaches every single-stage
# config (teacher, TA, scratch, KD, TAKD, Continuation-KD); Annealing-KD's stages get theirs from its MethodSpec,
# with tau_max lowered so that every temperature level still has an epoch.
QUICK_OVERRIDES = {'train.num_epochs': QUICK_EPOCHS}
QUICK_METHOD_OVERRIDES = {'annealing_kd': {
    'train.stage1.num_epochs': QUICK_EPOCHS, 'train.stage2.num_epochs': QUICK_EPOCHS,
    f'{ANNEALING_STAGE1_LOSS}.max_temperature': QUICK_EPOCHS,
}}


def _methods(dataset, family, quick, ablations):
    """Every student run of the generator's table, in its order; Continuation-KD with its ablations and our variant."""
    methods = {method: MethodSpec(config_file(dataset, family, method), teacher_role=spec.teacher,
                                  overrides=dict(QUICK_METHOD_OVERRIDES.get(method, {})) if quick else {})
               for method, spec in RUNS.items() if spec.role == 'student' and method != 'continuation_kd'}
    methods.update(continuation_methods(  # our variant: the former continuation_kd config's loss (KD T 20 -> 5)
        config_file(dataset, family, 'continuation_kd'), QUICK_EPOCHS if quick else None, ablations,
        {CONTINUATION_LOSS: temperature_variant(5.0, 20.0)}))
    return methods


def _description(dataset, family, quick):
    names = FAMILIES[family]
    paper = dict(PAPER_RESULTS[(dataset, family)])
    if (dataset, family) in CONTINUATION_PAPER_RESULTS:
        paper['continuation_kd'] = CONTINUATION_PAPER_RESULTS[(dataset, family)]
    return (f'{dataset.upper()}, {family} family: student {names["student"]}, teacher {names["teacher"]}, TA '
            f'{names["ta"]} (Annealing-KD paper, Tables 1-2 and 6: 160 epochs, Annealing-KD 160 + 160 as in the '
            f'paper; an equal student budget, e.g. 160 epochs = 80 + 80 for Annealing-KD, is the harness\'s '
            f'student epoch override; Continuation-KD: 200 epochs, its paper\'s setting). '
            f'Paper test accuracy (single runs): '
            + ', '.join(f'{method} {value}' for method, value in paper.items())
            + ('. QUICK smoke run: not a result.' if quick else '.'))


def build_cifar(dataset: str, options: dict = None, quick: bool = False) -> Suite:
    """The :class:`Suite` comparing scratch / KD / TAKD / Annealing-KD / Continuation-KD students on ``dataset``."""
    options = dict(options or {})
    _configure_data(options)
    family = options.get('family') or 'resnet'
    if family not in FAMILIES:
        raise ValueError(f'option family must be one of {sorted(FAMILIES)}, got {family!r}')
    return Suite(name=f'{dataset}-{family}', description=_description(dataset, family, quick),
                 teacher_config=config_file(dataset, family, 'teacher'), ta_config=config_file(dataset, family, 'ta'),
                 methods=_methods(dataset, family, quick, parse_flag(options.get('ablations', False), 'ablations')),
                 default_seeds=(0, 1, 2), quick_overrides=dict(QUICK_OVERRIDES) if quick else {})


def build_cifar10(options: dict = None, quick: bool = False) -> Suite:
    """CIFAR-10 suite (``options``: family, data_root, download, ablations)."""
    return build_cifar('cifar10', options, quick)


def build_cifar100(options: dict = None, quick: bool = False) -> Suite:
    """CIFAR-100 suite (``options``: family, data_root, download, ablations)."""
    return build_cifar('cifar100', options, quick)
