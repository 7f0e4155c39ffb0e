"""The embedded default suite: scikit-learn's digits (real 8x8 images shipped with the package), no download.

Models: teacher MLP 64-256-256-10 (85,002 parameters), TA 64-64-10 (4,810), students 64-w-10 with w hidden ReLU
units. Data: a fixed stratified split (1,077 / 360 / 360 images, ``plugins.datasets.digits``), inputs
standardised with the training split's statistics; validation chooses every checkpoint and every setting,
test gives the reported figures. Every student method gets the same epochs, optimiser and batch size (the
recipe, chosen on validation by ``digits_tuning`` below; see ``RECIPE``).

Axes (both papers' claims):
- the capacity gap: students of ``WIDTHS`` hidden units for scratch, KD, Annealing-KD and Continuation-KD;
  TAKD and KD with our teacher-noise mitigation at the main width only;
- a noisy teacher: on ``TEACHER_NOISE`` of the training samples (fixed per seed) the teacher's logits are
  rolled by a random shift (``plugins.teacher_noise``), for KD, KD with the mitigation, Annealing-KD and
  Continuation-KD at the main width; each is compared with itself under the clean teacher.
Option ``ablations=true`` adds Annealing-KD's ablations (tau_max in {1, 5, 20}, Stage-I KL instead of MSE) and
Continuation-KD without its margin (m = 0), with the clean and the noisy teacher.
"""
from dataclasses import replace

from ..configs import budget_overrides, read_structure, stage_epochs
from .base import ANNEALING_STAGE1_LOSS, MethodSpec, Suite, check_options, config_table, parse_flag
from .continuation import CONTINUATION_LOSS

__all__ = ['build_digits', 'build_digits_tuning', 'DIGITS_CONFIGS', 'WIDTHS', 'MAIN_WIDTH', 'TEACHER_NOISE',
           'RECIPE']

DIGITS_CONFIGS = config_table('yaml_configs/digits', {  # run: (method folder, model, teacher model)
    'teacher': ('ce', 'mlp_teacher', None), 'ta': ('kd', 'mlp64', 'mlp256'),
    'scratch': ('ce', 'mlp4', None), 'kd': ('kd', 'mlp4', 'mlp256'), 'takd': ('takd', 'mlp4', 'mlp64'),
    **{method: (method, 'mlp4', 'mlp256') for method in ('annealing_kd', 'continuation_kd', 'kd_noise_mitigation')}})
# The student recipe every config carries (chosen on validation, digits_tuning): Adam, constant learning rate.
RECIPE = {'optimizer': 'Adam', 'lr': 0.03, 'epochs': 50, 'batch_size': 64}
WIDTHS, MAIN_WIDTH, TEACHER_NOISE, NUM_CLASSES = (2, 4, 8, 16), 4, 0.25, 10
DEFAULT_SEEDS, TUNING_SEEDS = tuple(range(10)), tuple(range(100, 105))
QUICK_STUDENT_EPOCHS, QUICK_TEACHER_EPOCHS, QUICK_TAU_MAX = 10, 5, 5
AXIS_FAMILIES = ('scratch', 'kd', 'annealing_kd', 'continuation_kd')  # every width
NOISE_FAMILIES = ('kd', 'kd_noise_mitigation', 'annealing_kd', 'continuation_kd')
NOTES = {'scratch': 'cross-entropy only', 'kd': 'torchdistill KDLoss, T 4, alpha 0.5',
         'takd': 'KD from the 64-64-10 TA', 'annealing_kd': 'tau_max 10, MSE, Stage I + II halves',
         'continuation_kd': 'ContinuationKDLoss (see its config)',
         'kd_noise_mitigation': 'KD, samples whose teacher arg-max is wrong learn from the label'}
OPTIONS = ('ablations',)
AXES = {'width': {'reference': MAIN_WIDTH, 'label': 'student hidden units', 'against_reference': False},
        'teacher_noise': {'reference': 0.0, 'label': 'fraction of training samples with permuted teacher logits',
                          'against_reference': True}}


def _stage_sections(structure):
    """['train'] for a single-stage config, else ['train.stage1', 'train.stage2', ...]."""
    return [key[:-len('.num_epochs')] for key, _ in stage_epochs(structure)]


def _train_section(config):
    """'train.stage1' for a multi-stage config (the stage that reads the teacher), else 'train'."""
    return _stage_sections(read_structure(config))[0]


def width_overrides(family, width):
    """Runner overrides giving the student of ``family``'s config ``width`` hidden units."""
    model = 'model' if family == 'scratch' else 'student_model'
    return {f'models.{model}.kwargs.hidden_dims': [width]}


def noisy_teacher_overrides(config, fraction=TEACHER_NOISE):
    """Runner overrides that corrupt the teacher's logits on ``fraction`` of the training samples (per seed)."""
    section = _train_section(config)
    return {f'{section}.train_data_loader.dataset_wrapper': {
                'key': 'TeacherNoiseDatasetWrapper', 'kwargs': {'fraction': fraction, 'num_classes': NUM_CLASSES}},
            f'{section}.teacher': {'forward_proc': 'forward_all', 'requires_grad': False, 'auxiliary_model_wrapper': {
                'key': 'NoisyTeacherWrapper', 'kwargs': {'forward_proc': 'forward_batch_only'}}}}


def _method(family, width=MAIN_WIDTH, noise=0.0, **kwargs):
    overrides = dict(width_overrides(family, width) if width != MAIN_WIDTH else {})
    if noise:
        overrides.update(noisy_teacher_overrides(DIGITS_CONFIGS[family], noise))
    note = NOTES.get(family, '') + (f'; {width} hidden units' if width != MAIN_WIDTH else '') + \
        (f'; noisy teacher ({noise:.0%} of samples)' if noise else '')
    return MethodSpec(DIGITS_CONFIGS[family], teacher_role=None if family == 'scratch' else
                      ('ta' if family == 'takd' else 'teacher'), overrides=overrides, family=family,
                      axes=(('width', width), ('teacher_noise', noise)), note=note, **kwargs)


def _name(family, width=MAIN_WIDTH, noise=0.0):
    return family + (f'_w{width}' if width != MAIN_WIDTH else '') + ('_noisy' if noise else '')


def main_methods():
    """The reference point (main width, clean teacher) first, then the width axis, then the noisy teacher."""
    methods = {name: _method(name) for name in DIGITS_CONFIGS if name not in ('teacher', 'ta')}  # the table's order
    methods['annealing_kd'] = replace(methods['annealing_kd'], sweeps=('tau_max', 'stage1_loss'))  # with ablations
    for width in WIDTHS:
        if width != MAIN_WIDTH:
            methods.update({_name(f, width): _method(f, width, group='width') for f in AXIS_FAMILIES})
    methods.update({_name(f, noise=TEACHER_NOISE): _method(f, noise=TEACHER_NOISE, group='teacher_noise')
                    for f in NOISE_FAMILIES})
    return methods


def _ablations():
    config = DIGITS_CONFIGS['annealing_kd']
    methods = {f'annealing_kd_tau{tau}': MethodSpec(
        config, overrides={f'{ANNEALING_STAGE1_LOSS}.max_temperature': tau}, group='ablation', sweeps=('tau_max',),
        note=f'tau_max {tau}, MSE' + (' (no annealing)' if tau == 1 else '')) for tau in (1, 5, 20)}
    methods['annealing_kd_kl'] = MethodSpec(config, overrides={f'{ANNEALING_STAGE1_LOSS}.distance': 'kl'}, group='ablation',
                                            sweeps=('stage1_loss',), note='tau_max 10, KL')
    # Continuation-KD without its margin (m = 0), clean and with the noisy teacher: does the hinge's margin or
    # the final label phase (psi = 1) make it robust to the noisy teacher?
    config = DIGITS_CONFIGS['continuation_kd']
    for noise in (0.0, TEACHER_NOISE):
        overrides = {f'{CONTINUATION_LOSS}.margin': 0.0}
        overrides.update(noisy_teacher_overrides(config, noise) if noise else {})
        methods[_name('continuation_kd_m0', noise=noise)] = MethodSpec(
            config, overrides=overrides, group='ablation', family='continuation_kd_m0',
            axes=(('width', MAIN_WIDTH), ('teacher_noise', noise)),
            note='annealed hinge without margin (m = 0)' + (f'; noisy teacher ({noise:.0%})' if noise else ''))
    return methods


def _description(epochs):
    return ('scikit-learn digits (1,797 real 8x8 images; fixed stratified split 1,077 / 360 / 360; inputs '
            'standardised with the training split\'s statistics). Teacher MLP 64-256-256-10 (85,002 params), TA '
            f'64-64-10 (4,810), students 64-w-10, w in {list(WIDTHS)} (main width {MAIN_WIDTH}: 310 params). Every '
            f'student: {epochs} epochs, batch {RECIPE["batch_size"]}, {RECIPE["optimizer"]} lr {RECIPE["lr"]}. '
            f'Noisy teacher: logits permuted on {TEACHER_NOISE:.0%} of the training samples (fixed per seed).')


def build_digits(options: dict = None, quick: bool = False) -> Suite:
    """The default suite (10 seeds, both axes). ``--quick``: the six methods of the reference point, 2 seeds, 10
    student epochs, tau_max 5 (a smoke run, not a result). Option ``ablations`` (default false) adds Annealing-KD's
    tau_max and Stage-I loss ablations and Continuation-KD with m = 0 (clean and noisy teacher) at the main width.
    """
    options = dict(options or {})
    check_options('digits', options, OPTIONS)
    methods = main_methods()
    if parse_flag(options.get('ablations', False), 'ablations'):
        methods.update(_ablations())
    common = dict(name='digits', teacher_config=DIGITS_CONFIGS['teacher'], ta_config=DIGITS_CONFIGS['ta'],
                  axes=AXES)
    if quick:
        methods = {name: spec for name, spec in methods.items() if spec.group == 'main'}
        # 10 epochs split 5 + 5 cannot hold tau_max = 10 levels in Stage I (one epoch per level at least)
        methods['annealing_kd'] = replace(methods['annealing_kd'],
                                          overrides={f'{ANNEALING_STAGE1_LOSS}.max_temperature': QUICK_TAU_MAX})
        return Suite(description=_description(QUICK_STUDENT_EPOCHS) + ' QUICK smoke run: not a result.',
                     methods=methods, default_seeds=(0, 1), student_epochs=QUICK_STUDENT_EPOCHS,
                     teacher_epochs=QUICK_TEACHER_EPOCHS, ta_epochs=QUICK_TEACHER_EPOCHS, **common)
    return Suite(description=_description(RECIPE['epochs']), methods=methods, default_seeds=DEFAULT_SEEDS,
                 student_epochs=RECIPE['epochs'], **common)


def _with_recipe(family, lr, epochs, **kwargs):
    """``family``'s config at learning rate ``lr`` and ``epochs`` (split like the config's stages)."""
    config = DIGITS_CONFIGS[family]
    structure = read_structure(config)
    overrides = {f'{stage}.optimizer.kwargs.lr': lr for stage in _stage_sections(structure)}
    overrides.update(budget_overrides(structure, epochs))
    overrides.update(kwargs.pop('overrides', {}))
    return MethodSpec(config, teacher_role=None if family == 'scratch' else 'teacher', overrides=overrides,
                      group='tuning', family=family, **kwargs)


TUNING_LRS, TUNING_EPOCHS, TUNING_FAMILIES, RECIPE_TOLERANCE = (0.003, 0.01, 0.03), (50, 100), \
    ('scratch', 'kd', 'annealing_kd'), 0.5
TUNING_MARGINS = (0.0, 0.25, 1.0, 4.0, 16.0)  # Continuation-KD's m, on the mean squared logit distance


def _recipe_name(family, lr, epochs):
    return f'{family}_lr{lr:g}_e{epochs}'


def recipe_selection(records):
    """``(table rows, chosen (lr, epochs))`` by the rule of :func:`build_digits_tuning`, from validation only.

    Each row: lr, epochs, {family: mean best validation accuracy}, their average; recipes missing a family's
    runs are left out."""
    from ..report import is_ok
    from ..stats import describe
    rows = []
    for lr in TUNING_LRS:
        for epochs in TUNING_EPOCHS:
            means = {family: describe(r['best_val'] for r in records if is_ok(r) and
                                      r['method'] == _recipe_name(family, lr, epochs))['mean']
                     for family in TUNING_FAMILIES}
            if all(value == value for value in means.values()):  # no NaN: every family ran
                rows.append({'lr': lr, 'epochs': epochs, 'val': means, 'average': sum(means.values()) / len(means)})
    if not rows:
        return rows, None
    best = max(row['average'] for row in rows)
    eligible = [row for row in rows if row['average'] >= best - RECIPE_TOLERANCE]
    chosen = min(eligible, key=lambda row: (row['epochs'], -row['average']))
    return rows, (chosen['lr'], chosen['epochs'])


def write_recipe_selection(output_dir, records, suite):
    """``recipe_selection.md``: the validation table of the recipe sweep and the recipe the rule picks."""
    import os

    from plugins.atomic_files import atomic_write_text
    rows, chosen = recipe_selection(records)
    if chosen is None:
        return None
    lines = ['# Digits recipe selection (validation only, seeds ' + ', '.join(map(str, suite.default_seeds)) + ')', '',
             f'Rule: best average over {", ".join(TUNING_FAMILIES)} of the mean best validation accuracy; among '
             f'recipes within {RECIPE_TOLERANCE} points of it, the fewest epochs.', '',
             '| Adam lr | epochs | ' + ' | '.join(f'val {f}' for f in TUNING_FAMILIES) + ' | average | chosen |',
             '|' + '---|' * (len(TUNING_FAMILIES) + 4)]
    for row in rows:
        mark = '✓' if (row['lr'], row['epochs']) == chosen else ''
        lines.append(f"| {row['lr']:g} | {row['epochs']} | " + ' | '.join(f"{row['val'][f]:.2f}" for f in
                                                                          TUNING_FAMILIES) +
                     f" | {row['average']:.2f} | {mark} |")
    path = os.path.join(output_dir, 'recipe_selection.md')
    atomic_write_text(path, '\n'.join(lines) + '\n')
    return path


def build_digits_tuning(options: dict = None, quick: bool = False) -> Suite:
    """How the recipe and Continuation-KD's margin were chosen, on VALIDATION only, with seeds 100-104 (disjoint
    from the benchmark's 0-9).

    Sweep ``recipe``: Adam at a constant learning rate in ``TUNING_LRS`` for ``TUNING_EPOCHS`` epochs, for
    scratch, KD and Annealing-KD at the main width. Rule, fixed before the runs: the recipe with the best
    validation accuracy averaged over the three methods; among recipes within 0.5 points of it, the shortest
    (the 10-minute budget); ``recipe_selection.md`` applies it. Sweep ``margin``: Continuation-KD (the published
    annealed hinge) with the chosen recipe and m in ``TUNING_MARGINS`` (the paper does not state m); rule: the
    best mean validation accuracy (the "selected on val" mark). Read the "val" columns; test figures are shown
    but were not used for any choice.
    """
    check_options('digits_tuning', options or {}, ())
    methods = {}
    for lr in TUNING_LRS:
        for epochs in TUNING_EPOCHS:
            for family in TUNING_FAMILIES:
                methods[_recipe_name(family, lr, epochs)] = _with_recipe(
                    family, lr, epochs, sweeps=(f'recipe_{family}',), note=f'Adam lr {lr:g}, {epochs} epochs')
    for margin in TUNING_MARGINS:
        methods[f'continuation_kd_m{margin:g}'] = _with_recipe(
            'continuation_kd', RECIPE['lr'], RECIPE['epochs'], overrides={f'{CONTINUATION_LOSS}.margin': margin},
            sweeps=('margin',), note=f'annealed hinge, m {margin:g}')
    return Suite(name='digits_tuning', description='Selection of the digits recipe and of Continuation-KD\'s margin '
                                                   'on validation (seeds 100-104).',
                 teacher_config=DIGITS_CONFIGS['teacher'], ta_config=DIGITS_CONFIGS['ta'], methods=methods,
                 default_seeds=TUNING_SEEDS, baseline=_recipe_name('kd', RECIPE['lr'], RECIPE['epochs']),
                 report=write_recipe_selection, selection_only=True)
