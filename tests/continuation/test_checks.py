import math

import pytest

from continuation.checks import check_bool, check_choice, check_fields, check_integer, check_number, is_number


class NamedError(ValueError):
    pass


def test_is_number_rejects_bools_and_text():
    assert is_number(1) and is_number(-2.5) and is_number(math.inf)
    assert not is_number(True) and not is_number('1') and not is_number(None)


@pytest.mark.parametrize('value', [True, False])
def test_bools_pass_only_the_bool_check(value):
    assert check_bool(value, 'flag') is value
    with pytest.raises(ValueError, match=rf'count must be an integer >= 1, got {value}'):
        check_integer(value, 'count')
    with pytest.raises(ValueError, match=rf'weight must be a number in \[0, 1\], got {value}'):
        check_number(value, 'weight', 0, 1)


def test_bool_check_names_the_field():
    with pytest.raises(ValueError, match="anneal_margin must be true or false, got 'yes'"):
        check_bool('yes', 'anneal_margin')


def test_integer_ranges_and_notes():
    assert check_integer(3, 'n') == 3 and check_integer(0, 'n', 0) == 0 and check_integer(-7, 'seed', None) == -7
    with pytest.raises(ValueError, match=r'num_levels must be an integer >= 1 for the step shape, got 0'):
        check_integer(0, 'num_levels', note=' for the step shape')
    with pytest.raises(ValueError, match=r'--seed must be an integer in \[0, 9\], got 10'):
        check_integer(10, '--seed', 0, 9)
    with pytest.raises(ValueError, match=r'split_seed must be an integer, got 1.5'):
        check_integer(1.5, 'split_seed', None)
    with pytest.raises(ValueError, match=r'n must be an integer >= 2, got 2.0'):
        check_integer(2.0, 'n', 2)  # a float is not an integer, even a whole one


@pytest.mark.parametrize('value, kwargs, message', [
    (0.0, dict(minimum=0, exclusive_minimum=True, finite=True), 'a finite number > 0'),
    (math.inf, dict(minimum=0, finite=True), 'a finite number >= 0'),
    (-1, dict(minimum=0), 'a number >= 0'),
    (1.0, dict(minimum=0, maximum=1, exclusive_maximum=True), r'a number in \[0, 1\)'),
    (0, dict(minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True), r'a number in \(0, 1\)'),
    (2, dict(maximum=1.5), 'a number <= 1.5'),
    (math.nan, {}, 'a number'),
    (math.nan, dict(minimum=0, maximum=1), r'a number in \[0, 1\]'),
])
def test_number_ranges_are_described(value, kwargs, message):
    with pytest.raises(ValueError, match=rf'^x must be {message}, got {value!r}$'):
        check_number(value, 'x', **kwargs)


def test_number_bounds_are_inclusive_unless_said():
    assert check_number(0, 'x', 0, 1) == 0 and check_number(1, 'x', 0, 1) == 1
    assert check_number(math.inf, 'x') == math.inf
    with pytest.raises(ValueError, match=r'std_floor must be a number > 0 \(pixel levels\), got 0'):
        check_number(0, 'std_floor', 0, exclusive_minimum=True, note=' (pixel levels)')


def test_a_number_written_as_text_gets_the_yaml_hint():
    with pytest.raises(ValueError, match=r"lr must be a finite number >= 0, got '1e-3' \(a string: YAML 1.1 reads 1e-3 "
                                         r"as text, write 1.0e-3\)"):
        check_number('1e-3', 'lr', 0, finite=True)


def test_choices_are_listed_in_the_order_given():
    assert check_choice('sum', 'reduction', ('mean', 'sum')) == 'sum'
    with pytest.raises(ValueError, match=r"task must be one of \['classification', 'regression'\], got 'ranking'"):
        check_choice('ranking', 'task', ('classification', 'regression'))
    with pytest.raises(ValueError, match=r"mode must be one of \['auto'\], got \{'a': 1\}"):
        check_choice({'a': 1}, 'mode', ['auto'])  # an unhashable value is named, not a TypeError


def test_unknown_fields_are_named_with_the_accepted_ones():
    check_fields({'ramp': 1}, 'psi', ('ramp', 'switch'))
    with pytest.raises(ValueError, match=r"psi: unknown field\(s\) \['rmap'\]; accepted: \['ramp', 'switch'\]"):
        check_fields({'rmap': 1, 'switch': 2}, 'psi', ('switch', 'ramp'))


def test_the_error_class_is_the_callers():
    for check, args in [(check_bool, (1, 'f')), (check_integer, (0, 'f')), (check_number, ('x', 'f')),
                        (check_choice, ('x', 'f', ['y'])), (check_fields, ({'x': 1}, 'f', ['y']))]:
        with pytest.raises(NamedError):
            check(*args, error=NamedError)
