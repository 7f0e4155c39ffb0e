"""The psi schedule against the paper's Eqs. 6-8, its boundaries, and named errors for bad specs."""
import pytest

from continuation import PSI_EQ7, PSI_EQ8, PsiSchedule, psi_step


def sequence(spec, num_epochs):
    schedule = PsiSchedule(spec)
    schedule.check_num_epochs(num_epochs)
    return [schedule(epoch, num_epochs) for epoch in range(num_epochs)]


def test_eq7_cifar_is_min_one_e_over_150_in_a_200_epoch_run():
    values = sequence(PSI_EQ7, 200)
    assert values == pytest.approx([min(1.0, e / 150) for e in range(200)], abs=1e-12, rel=0)
    assert values[0] == 0.0 and values[149] == pytest.approx(149 / 150, abs=1e-12) and values[150:] == [1.0] * 50


def test_eq8_glue_is_e_over_40_then_jumps_to_one_at_epoch_20_of_30():
    values = sequence(PSI_EQ8, 30)
    assert values == pytest.approx([e / 40 if e < 20 else 1.0 for e in range(30)], abs=1e-12, rel=0)
    assert values[19] == pytest.approx(0.475, abs=1e-12) and values[20] == 1.0  # the jump from 0.475 to 1


@pytest.mark.parametrize('spec, num_epochs, expected', [
    (PSI_EQ7, 25, [min(1.0, e / 18.75) for e in range(25)]),  # d = 0.75 x 25
    (PSI_EQ8, 25, [3 * e / 100 if e < 50 / 3 else 1.0 for e in range(25)]),  # d = 100/3, s = 50/3
    (psi_step(4), 6, [0, 0, 0, 0, 1, 1]),  # Eq. 6 with k = 4
    ({'switch': 0.5}, 4, [0, 0, 1, 1]),
    ({'ramp_epochs': 150}, 200, [min(1.0, e / 150) for e in range(200)]),
    ({'ramp_epochs': 40, 'switch_epochs': 20}, 30, [e / 40 if e < 20 else 1.0 for e in range(30)]),
    ({'ramp': 0.75}, 200, [min(1.0, e / 150) for e in range(200)]),  # a float fraction, exact in binary
    ({'ramp': 4 / 3, 'switch': 2 / 3}, 30, [e / 40 if e < 20 else 1.0 for e in range(30)]),
    ({'value': 0.5}, 3, [0.5, 0.5, 0.5]),  # Table 7: psi not dynamic
    ({'value': 0}, 1, [0.0]),
])
def test_published_and_equivalent_forms(spec, num_epochs, expected):
    assert sequence(spec, num_epochs) == pytest.approx(expected, abs=1e-12, rel=0)


def test_fractions_keep_a_config_valid_when_the_budget_changes():
    for num_epochs in (4, 10, 37, 160, 200):  # Eq. 7 needs n - 1 >= 0.75 n
        values = sequence(PSI_EQ7, num_epochs)
        assert values[0] == 0.0 and values[-1] == 1.0
        assert all(b >= a for a, b in zip(values, values[1:]))
    for num_epochs in (3, 18, 30, 45):  # Eq. 8 needs n - 1 >= 2 n / 3
        values = sequence(PSI_EQ8, num_epochs)
        assert values[0] == 0.0 and values[-1] == 1.0 and all(b >= a for a, b in zip(values, values[1:]))


def test_per_iteration_positions_are_fractional_epochs():
    schedule = PsiSchedule(dict(PSI_EQ8, per_iteration=True))
    assert schedule.per_iteration and not PsiSchedule(PSI_EQ8).per_iteration
    assert schedule(19.5, 30) == pytest.approx(19.5 / 40, abs=1e-12)
    assert schedule(19.99, 30) < 0.5 and schedule(20.0, 30) == 1.0


def test_default_is_eq7_and_a_fixed_psi_is_not_dynamic():
    assert PsiSchedule().spec == PSI_EQ7 and PsiSchedule().dynamic
    assert not PsiSchedule({'value': 0.5}).dynamic


@pytest.mark.parametrize('spec, message', [
    ({'ramp': -0.5}, r'psi.ramp must be > 0, got -0.5: psi must start at 0 .* rise monotonically'),
    ({'switch_epochs': 0}, r'psi.switch_epochs must be > 0'),
    ({'value': 1.5}, r'psi.value must be a number in \[0, 1\], got 1.5'),
    ({'value': -0.1}, r'psi.value must be a number in \[0, 1\]'),
    ({'value': 0.5, 'ramp': 0.75}, r"psi: a fixed value excludes \['ramp'\]"),
    ({'ramp': 0.75, 'ramp_epochs': 150}, 'psi: give ramp .* or ramp_epochs .*, not both'),
    ({'rampe': 0.75}, r"psi: unknown field\(s\) \['rampe'\]; accepted: \['per_iteration', 'ramp'"),
    ({}, r'psi needs ramp \(or ramp_epochs\), switch \(or switch_epochs\), or a fixed value'),
    ({'ramp': 'three quarters'}, r"psi.ramp must be a number or a fraction string such as '4/3'"),
    ({'ramp': True}, r"psi.ramp must be a number or a fraction string"),
    ({'ramp': 0.75, 'per_iteration': 'yes'}, 'psi.per_iteration must be true or false'),
    ([0, 0.5, 1], 'psi must be a mapping'),
])
def test_bad_specs_name_the_field(spec, message):
    with pytest.raises(ValueError, match=message):
        PsiSchedule(spec)


@pytest.mark.parametrize('spec, num_epochs, psi_at_end', [
    (PSI_EQ7, 3, '0.8889'),  # d = 2.25 > n - 1 = 2
    (PSI_EQ8, 2, '0.375'),
    ({'ramp': 1}, 30, '0.9667'),
    ({'ramp_epochs': 30}, 30, '0.9667'),
    ({'switch_epochs': 30}, 30, '0'),
])
def test_a_dynamic_psi_longer_than_the_stage_is_rejected(spec, num_epochs, psi_at_end):
    with pytest.raises(ValueError, match=rf'psi .* is longer than the stage: with train.num_epochs={num_epochs}, '
                                         rf'psi is {psi_at_end} < 1 at the last epoch'):
        PsiSchedule(spec).check_num_epochs(num_epochs, field='train.num_epochs')


def test_positions_outside_the_stage_are_rejected():
    with pytest.raises(ValueError, match=r'epoch must lie in \[0, 30\), got 30'):
        PsiSchedule(PSI_EQ8)(30, 30)
    with pytest.raises(ValueError, match='num_epochs must be an integer >= 1'):
        PsiSchedule(PSI_EQ8).check_num_epochs(0)
