"""The embedded default suite: scikit-learn's digits (real 8x8 images shipped with the package), no download.

Setting (chosen on VALIDATION with the ``digits_tuning`` suite below; see the README's benchmark section):
teacher MLP 64-256-256-10 (85,002 parameters), TA MLP 64-64-10 (4,810, about the geometric mean of teacher and
student), student MLP 64-4-10 (310 parameters, 274x smaller than the teacher). On validation (seeds 10-12),
students with 8 or 16 hidden units put scratch, KD and Annealing-KD within about 2 points of each other
(94-98 %); only the 4-unit student separates them (KD 86.4, scratch 79.0, Annealing-KD 53.6 %), though its
spread over seeds is large too (std about 11 points), which is why the tables pair methods by seed.
Every student method gets the same 200 epochs (Annealing-KD: 100 Stage I + 100 Stage II), batch 64 and Adam
lr 0.01; the split is fixed and stratified (60 / 20 / 20 %, ``plugins.datasets.digits``): validation for every
checkpoint and setting choice, test only for the reported figures.

Ablations (Annealing-KD paper, Tables 9 and 10): tau_max in {1, 5, 10, 20} (tau_max = 1 is logit matching
then fine-tuning, no annealing: the control for what annealing adds) and the Stage-I loss MSE versus KL.
"""
from dataclasses import replace

from .base import MethodSpec, Suite

__all__ = ['build_digits', 'build_digits_tuning', 'DIGITS_CONFIGS']

ROOT = 'yaml_configs/digits'
DIGITS_CONFIGS = {
    'teacher': f'{ROOT}/ce/mlp_teacher.yaml',
    'ta': f'{ROOT}/kd/mlp64_from_mlp256.yaml',
    'scratch': f'{ROOT}/ce/mlp4.yaml',
    'kd': f'{ROOT}/kd/mlp4_from_mlp256.yaml',
    'takd': f'{ROOT}/takd/mlp4_from_mlp64.yaml',
    'annealing_kd': f'{ROOT}/annealing_kd/mlp4_from_mlp256.yaml',
    'continuation_kd': f'{ROOT}/continuation_kd/mlp4_from_mlp256.yaml',
}
STUDENT_EPOCHS, QUICK_STUDENT_EPOCHS, QUICK_TEACHER_EPOCHS, QUICK_TAU_MAX = 200, 10, 5, 5
_STAGE1_LOSS = 'train.stage1.criterion.kwargs.sub_terms.annealing_kd.criterion.kwargs'
_CONTINUATION_LOSS = 'train.criterion.kwargs.sub_terms.continuation_kd.criterion.kwargs'
OPTIONS = ('ablations',)


def _main_methods():
    return {
        'scratch': MethodSpec(DIGITS_CONFIGS['scratch'], teacher_role=None, note='cross-entropy only'),
        'kd': MethodSpec(DIGITS_CONFIGS['kd'], note="torchdistill KDLoss, T 4, alpha 0.5"),
        'takd': MethodSpec(DIGITS_CONFIGS['takd'], teacher_role='ta', note='KD from the 64-64-10 TA'),
        'annealing_kd': MethodSpec(DIGITS_CONFIGS['annealing_kd'], sweeps=('tau_max', 'stage1_loss'),
                                   note='tau_max 10, MSE'),
        'continuation_kd': MethodSpec(DIGITS_CONFIGS['continuation_kd'], note='target: alpha 0 -> 0.5, linear'),
    }


def _ablations():
    config = DIGITS_CONFIGS['annealing_kd']
    methods = {f'annealing_kd_tau{tau}': MethodSpec(config, overrides={f'{_STAGE1_LOSS}.max_temperature': tau},
                                                    group='ablation', sweeps=('tau_max',),
                                                    note=f'tau_max {tau}, MSE' + (' (no annealing)' if tau == 1 else ''))
               for tau in (1, 5, 20)}
    methods['annealing_kd_kl'] = MethodSpec(config, overrides={f'{_STAGE1_LOSS}.distance': 'kl'}, group='ablation',
                                            sweeps=('stage1_loss',), note='tau_max 10, KL')
    return methods


def _flag(value, field):
    text = str(value).strip().lower()
    if isinstance(value, bool) or text in ('1', 'true', 'yes', '0', 'false', 'no'):
        return value if isinstance(value, bool) else text in ('1', 'true', 'yes')
    raise ValueError(f'option {field} must be true or false, got {value!r}')


def build_digits(options=None, quick=False):
    """The default suite. ``--quick``: the 5 main methods, 2 seeds, 10 student epochs, tau_max 5 (a smoke run).

    Option ``ablations`` (default true; false in quick mode) adds the tau_max and Stage-I loss ablations.
    """
    options = dict(options or {})
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(f'unknown digits suite option(s) {unknown}; accepted: {list(OPTIONS)}')
    methods = _main_methods()
    if _flag(options.get('ablations', not quick), 'ablations'):
        methods.update(_ablations())
    description = ('scikit-learn digits (1,797 real 8x8 images; fixed stratified 60/20/20 split). Teacher MLP '
                   '64-256-256-10 (85,002 params), TA 64-64-10 (4,810), student 64-4-10 (310). Every student: '
                   f'{QUICK_STUDENT_EPOCHS if quick else STUDENT_EPOCHS} epochs, batch 64, Adam lr 0.01.')
    if quick:
        # 10 epochs split 5 + 5 cannot hold tau_max = 10 levels in Stage I (one epoch per level at least)
        methods['annealing_kd'] = replace(methods['annealing_kd'],
                                          overrides={f'{_STAGE1_LOSS}.max_temperature': QUICK_TAU_MAX})
        return Suite(name='digits', description=description + ' QUICK smoke run: not a result.',
                     teacher_config=DIGITS_CONFIGS['teacher'], ta_config=DIGITS_CONFIGS['ta'], methods=methods,
                     default_seeds=(0, 1), student_epochs=QUICK_STUDENT_EPOCHS, teacher_epochs=QUICK_TEACHER_EPOCHS,
                     ta_epochs=QUICK_TEACHER_EPOCHS)
    return Suite(name='digits', description=description, teacher_config=DIGITS_CONFIGS['teacher'],
                 ta_config=DIGITS_CONFIGS['ta'], methods=methods, default_seeds=(0, 1, 2, 3, 4),
                 student_epochs=STUDENT_EPOCHS)


def _continuation(**kwargs):
    loss = {'student_module_path': '.', 'student_module_io': 'output', 'teacher_module_path': '.',
            'teacher_module_io': 'output', 'temperature': 4.0, 'alpha': 0.5}
    loss.update(kwargs)
    return MethodSpec(DIGITS_CONFIGS['continuation_kd'], overrides={_CONTINUATION_LOSS: loss}, group='tuning',
                      sweeps=('continuation',), note=', '.join(f'{k}={v}' for k, v in kwargs.items()))


def build_digits_tuning(options=None, quick=False):
    """How the digits setting was chosen, on VALIDATION only, with seeds (10, 11, 12) disjoint from the benchmark's.

    Sweeps: the student's width (4 / 8 / 16 hidden units) for scratch, KD and Annealing-KD; Annealing-KD's split
    of the 200 epochs; Continuation-KD's objective and schedule. Read the "val" columns; test figures are shown
    but were not used for any choice.
    """
    if options:
        raise ValueError(f'the digits_tuning suite takes no options, got {sorted(options)}')
    methods = {}
    for width in (4, 8, 16):
        sweep = (f'width{width}',)
        methods[f'scratch_w{width}'] = MethodSpec(DIGITS_CONFIGS['scratch'], teacher_role=None, group='tuning',
                                                  overrides={'models.model.kwargs.hidden_dims': [width]}, sweeps=sweep)
        for name in ('kd', 'annealing_kd'):
            methods[f'{name}_w{width}'] = MethodSpec(
                DIGITS_CONFIGS[name], group='tuning',
                sweeps=sweep + (('annealing_split',) if name == 'annealing_kd' and width == 4 else ()),
                overrides={'models.student_model.kwargs.hidden_dims': [width]})
    methods['annealing_kd_150_50'] = MethodSpec(DIGITS_CONFIGS['annealing_kd'], group='tuning',
                                                sweeps=('annealing_split',), note='Stage I 150 + Stage II 50',
                                                overrides={'train.stage1.num_epochs': 150, 'train.stage2.num_epochs': 50})
    methods['cont_temperature_cosine'] = _continuation(objective='temperature', max_temperature=16.0,
                                                       schedule={'shape': 'cosine'})
    methods['cont_temperature_linear'] = _continuation(objective='temperature', max_temperature=16.0,
                                                       schedule={'shape': 'linear'})
    methods['cont_target_linear'] = _continuation(objective='target', direction='teacher_to_label',
                                                  schedule={'shape': 'linear'})
    methods['cont_temperature_mask'] = _continuation(objective='temperature', max_temperature=16.0,
                                                     schedule={'shape': 'cosine'},
                                                     noise_mitigation={'threshold': 0.0, 'mode': 'mask'})
    return Suite(name='digits_tuning', description='Selection of the digits setting on validation (seeds 10-12).',
                 teacher_config=DIGITS_CONFIGS['teacher'], ta_config=DIGITS_CONFIGS['ta'], methods=methods,
                 default_seeds=(10, 11, 12), baseline='kd_w4')
