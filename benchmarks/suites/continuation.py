"""Continuation-KD methods of the CIFAR and GLUE suites: the published method, its Table-7 ablations, our variant.

Every method is the suite's generated ``continuation_kd`` config plus runner overrides of its loss kwargs:

- ``continuation_kd``: the published method (Jafari et al., EMNLP 2022 Findings): phi(T) on the teacher and on
  the margin, dynamic psi;
- with ``ablations``, Table 7 (MRPC F1 / RTE accuracy, DistilRoBERTa): ``continuation_kd_psi_only`` (phi = 1 on
  teacher and margin; 91.09 / 72.56), ``continuation_kd_phi_teacher`` (margin coefficient 1, psi = 0.5; 91.21 /
  73.64), ``continuation_kd_phi_margin`` (teacher coefficient 1, psi = 0.5; 90.90 / 71.48); all three is
  ``continuation_kd`` (91.93 / 77.62). Also our older variant, ``continuation_kd_temperature`` (KD whose
  temperature falls over the run, with teacher-noise mitigation; ours, not the paper's), on the same settings.
"""
from continuation.psi import psi_step

from .base import MethodSpec

__all__ = ['CONTINUATION_LOSS', 'TABLE7_ABLATIONS', 'continuation_methods', 'quick_overrides']

CONTINUATION_LOSS = 'train.criterion.kwargs.sub_terms.continuation_kd.criterion.kwargs'
LOGITS_IO = {'student_module_path': '.', 'student_module_io': 'output', 'teacher_module_path': '.',
             'teacher_module_io': 'output'}
TABLE7_ABLATIONS = {
    'continuation_kd_psi_only': ({'anneal_teacher': False, 'anneal_margin': False},
                                 'Table 7: psi dynamic only (phi = 1 on teacher and margin)'),
    'continuation_kd_phi_teacher': ({'anneal_margin': False, 'psi': {'value': 0.5}},
                                    'Table 7: phi on the teacher only (margin x 1, psi fixed 0.5)'),
    'continuation_kd_phi_margin': ({'anneal_teacher': False, 'psi': {'value': 0.5}},
                                   'Table 7: phi on the margin only (teacher x 1, psi fixed 0.5)'),
}


def quick_overrides(epochs: int) -> dict:
    """Smoke-run overrides of the published method: T_max = ``epochs`` levels, and psi as Eq. 6's step at the
    last epoch (a dynamic psi must reach 1 within the run) or, for a single epoch, fixed at 0.5."""
    psi = {'value': 0.5} if epochs == 1 else psi_step(epochs - 1)
    return {f'{CONTINUATION_LOSS}.max_temperature': epochs, f'{CONTINUATION_LOSS}.psi': psi}


def temperature_variant(temperature: float, max_temperature: float) -> dict:
    """Our variant's loss kwargs: KD (alpha 0.5) whose temperature falls from ``max_temperature`` to
    ``temperature`` on a cosine schedule, with teacher-noise mitigation (``continuation.objectives``)."""
    return dict(LOGITS_IO, objective='temperature', temperature=temperature, alpha=0.5,
                max_temperature=max_temperature, schedule={'shape': 'cosine'},
                noise_mitigation={'threshold': 0.2, 'mode': 'mask'})


def continuation_methods(config: str, quick_epochs: int = None, ablations: bool = False,
                         variant_overrides: dict = None) -> dict:
    """{method: MethodSpec} of the published method and, with ``ablations``, Table 7's and our variant's.

    ``quick_epochs``: the smoke run's epochs (None: a real run). ``variant_overrides``: the runner overrides that
    turn ``config`` into our variant (None: no variant).
    """
    quick = quick_overrides(quick_epochs) if quick_epochs else {}
    sweeps = ('table7',) if ablations else ()
    methods = {'continuation_kd': MethodSpec(config, overrides=dict(quick), sweeps=sweeps,
                                             note='published: phi on teacher and margin, dynamic psi')}
    if not ablations:
        return methods
    for name, (loss_kwargs, note) in TABLE7_ABLATIONS.items():
        overrides = dict(quick)
        overrides.update({f'{CONTINUATION_LOSS}.{key}': value for key, value in loss_kwargs.items()})
        methods[name] = MethodSpec(config, overrides=overrides, group='ablation', sweeps=sweeps, note=note)
    if variant_overrides is not None:
        methods['continuation_kd_temperature'] = MethodSpec(
            config, overrides=dict(variant_overrides), group='ablation',
            note='ours: KD temperature falling over the run, noise mitigation')
    return methods
