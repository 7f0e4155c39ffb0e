import math

import pytest

from continuation import SCHEDULE_SHAPES, ContinuationSchedule, annealing_temperature, linear_annealing


def temperatures(num_epochs, max_temperature):
    schedule = ContinuationSchedule('step', num_levels=max_temperature)
    return [annealing_temperature(schedule(i, num_epochs), max_temperature) for i in range(num_epochs)]


def authors_multipliers(num_epochs, max_temperature):
    """The authors' code: T counts up from 1, +1 every int(epochs / tau_max) epochs; multiplier T / tau_max."""
    period = int(num_epochs / max_temperature)
    return [(1 + epoch // period) / max_temperature for epoch in range(num_epochs)]


@pytest.mark.parametrize('num_epochs, max_temperature, expected', [
    (10, 10, [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]),
    (20, 10, [10, 10, 9, 9, 8, 8, 7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1]),
    (25, 10, [10, 10, 10, 9, 9, 8, 8, 8, 7, 7, 6, 6, 6, 5, 5, 4, 4, 4, 3, 3, 2, 2, 2, 1, 1]),
    (14, 7, [7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1]),
    (5, 1, [1, 1, 1, 1, 1]),
])
def test_temperature_sequence(num_epochs, max_temperature, expected):
    assert temperatures(num_epochs, max_temperature) == expected


@pytest.mark.parametrize('num_epochs, max_temperature', [(10, 10), (20, 10), (14, 7), (5, 1), (28, 14)])
def test_multipliers_equal_authors_code_when_stage_is_a_multiple(num_epochs, max_temperature):
    ours = [linear_annealing(t, max_temperature) for t in temperatures(num_epochs, max_temperature)]
    assert ours == pytest.approx(authors_multipliers(num_epochs, max_temperature))


def test_uneven_stage_stays_in_range_where_authors_code_overshoots():
    ours = [linear_annealing(t, 10) for t in temperatures(25, 10)]
    assert min(ours) == pytest.approx(0.1) and max(ours) == pytest.approx(1.0)
    assert max(authors_multipliers(25, 10)) == pytest.approx(1.3)  # the defect REFERENCE.md describes


@pytest.mark.parametrize('num_epochs, max_temperature', [(10, 10), (11, 10), (19, 10), (25, 10), (100, 7)])
def test_levels_are_spread_evenly(num_epochs, max_temperature):
    counts = [temperatures(num_epochs, max_temperature).count(t) for t in range(1, max_temperature + 1)]
    assert max(counts) - min(counts) <= 1 and sum(counts) == num_epochs


@pytest.mark.parametrize('shape, kwargs', [('linear', {}), ('cosine', {}), ('exponential', {}),
                                           ('exponential', {'rate': -2.0}), ('step', {'num_levels': 3})])
@pytest.mark.parametrize('num_steps', [1, 2, 3, 7, 50])
def test_shapes_are_monotone_and_hit_both_ends(shape, kwargs, num_steps):
    if shape == 'step' and num_steps < 3:
        return
    schedule = ContinuationSchedule(shape, **kwargs)
    values = [schedule(i, num_steps) for i in range(num_steps)]
    assert values[-1] == pytest.approx(1.0)
    if num_steps > 1:
        assert values[0] == pytest.approx(0.0)
    assert all(b >= a for a, b in zip(values, values[1:]))
    assert all(0.0 <= v <= 1.0 for v in values)


def test_shape_values_by_hand():
    assert ContinuationSchedule('linear')(1, 5) == pytest.approx(0.25)
    assert ContinuationSchedule('cosine')(1, 3) == pytest.approx(0.5)
    assert ContinuationSchedule('cosine')(1, 4) == pytest.approx(0.25)  # (1 - cos(pi/3)) / 2
    assert ContinuationSchedule('exponential', rate=math.log(3))(1, 3) == pytest.approx((math.sqrt(3) - 1) / 2)
    assert [ContinuationSchedule('step', num_levels=3)(i, 6) for i in range(6)] == [0, 0, 0.5, 0.5, 1, 1]


def test_bad_schedules_fail_with_the_field_name():
    with pytest.raises(ValueError, match=r"schedule shape must be one of \['linear', 'cosine', 'step', 'exponential'\]"):
        ContinuationSchedule('sawtooth')
    with pytest.raises(ValueError, match='num_levels must be an integer >= 1'):
        ContinuationSchedule('step')
    with pytest.raises(ValueError, match='num_levels applies to the step shape only'):
        ContinuationSchedule('linear', num_levels=3)
    with pytest.raises(ValueError, match='rate must be a finite non-zero number'):
        ContinuationSchedule('exponential', rate=0)
    with pytest.raises(ValueError, match='train.stage1.num_epochs=5 is shorter than the 10 levels'):
        ContinuationSchedule('step', num_levels=10).check_num_steps(5, field='train.stage1.num_epochs')
    with pytest.raises(ValueError, match=r'step must lie in \[0, 4\]'):
        ContinuationSchedule('linear')(5, 5)
    with pytest.raises(ValueError, match=r'lambda must lie in \[0, 1\]'):
        annealing_temperature(1.5, 10)


def test_schedule_names_are_the_documented_ones():
    assert SCHEDULE_SHAPES == ('linear', 'cosine', 'step', 'exponential')
