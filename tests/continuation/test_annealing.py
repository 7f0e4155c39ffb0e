import pytest

from continuation import ANNEALING_FUNCTIONS, cosine_annealing, exponential_annealing, get_annealing_function, \
    linear_annealing


@pytest.mark.parametrize('temperature, expected', [(1, 1.0), (5, 0.6), (10, 0.1)])
def test_linear_annealing_matches_eq3(temperature, expected):
    # Phi(T) = 1 - (T - 1) / tau_max with tau_max = 10
    assert linear_annealing(temperature, 10) == pytest.approx(expected)


def test_cosine_midpoint_by_hand():
    # tau_max = 3, T = 2: 1/3 + (2/3) * (1 + cos(pi/2)) / 2 = 1/3 + 1/3
    assert cosine_annealing(2, 3) == pytest.approx(2 / 3)


def test_exponential_midpoint_by_hand():
    # tau_max = 4, T = 2.5 would be off-grid; T = 2: 4 ** (-1/3)
    assert exponential_annealing(2, 4) == pytest.approx(4 ** (-1 / 3))


@pytest.mark.parametrize('name', sorted(ANNEALING_FUNCTIONS))
@pytest.mark.parametrize('max_temperature', [1, 2, 7, 10, 14])
def test_every_phi_is_decreasing_with_paper_end_points(name, max_temperature):
    phi = get_annealing_function(name)
    values = [phi(t, max_temperature) for t in range(1, max_temperature + 1)]
    assert values[0] == pytest.approx(1.0)
    assert values[-1] == pytest.approx(1.0 / max_temperature)
    assert all(a > b for a, b in zip(values, values[1:]))
    assert all(0.0 < v <= 1.0 for v in values)


@pytest.mark.parametrize('bad', [0, -3, 2.5, True, '10'])
def test_bad_max_temperature_names_the_field(bad):
    with pytest.raises(ValueError, match='max_temperature must be an integer >= 1'):
        linear_annealing(1, bad)


def test_temperature_outside_range_is_rejected():
    with pytest.raises(ValueError, match=r'temperature must lie in \[1, max_temperature=10\]'):
        linear_annealing(11, 10)


def test_unknown_annealing_lists_the_choices():
    with pytest.raises(ValueError, match=r"annealing must be one of \['cosine', 'exponential', 'linear'\], got 'sigmoid'"):
        get_annealing_function('sigmoid')
