"""Registry of benchmark suites: name -> ``build(options: dict, quick: bool) -> Suite``.

Built-in suites live in this package. ``cifar10``, ``cifar100`` and ``glue`` are imported only when asked
for, because their modules pull in heavier dependencies (and may be absent from a checkout): a missing
module gives a :class:`SuiteError` that says so.
"""
import importlib
import importlib.util

from .base import MethodSpec, Suite

__all__ = ['SUITES', 'SuiteError', 'register_suite', 'suite_names', 'build_suite', 'MethodSpec', 'Suite']

DEFAULT_SUITE = 'digits'


class SuiteError(ValueError):
    """An unknown suite, or a suite whose module cannot be imported; the message lists the valid names."""


# name -> (module, function); modules are relative to this package and imported lazily.
SUITES = {
    'digits': ('.digits', 'build_digits'),
    'digits_tuning': ('.digits', 'build_digits_tuning'),
    'sinusoid': ('.sinusoid', 'build_sinusoid'),
    'noisy_sinusoid': ('.noisy_sinusoid', 'build_noisy_sinusoid'),
    'cifar10': ('.cifar', 'build_cifar10'),
    'cifar100': ('.cifar', 'build_cifar100'),
    'glue': ('.glue', 'build_glue'),
}


def register_suite(name, module, function):
    """Adds a suite built by ``module.function(options, quick)``; refuses to replace an existing name."""
    if name in SUITES:
        raise KeyError(f'suite {name!r} is already registered')
    SUITES[name] = (module, function)


def suite_names():
    return sorted(SUITES)


def build_suite(name, options=None, quick=False):
    """Builds the suite registered as ``name``; unknown names and missing modules raise :class:`SuiteError`."""
    if name not in SUITES:
        raise SuiteError(f'unknown suite {name!r}; valid suites: {", ".join(suite_names())}')
    module_name, function_name = SUITES[name]
    try:
        module = importlib.import_module(module_name, __name__)
    except ModuleNotFoundError as error:
        missing = module_name.lstrip('.')
        if error.name not in (f'{__name__}.{missing}', missing):
            raise
        raise SuiteError(f'suite {name!r} is registered but its module benchmarks/suites/{missing}.py is not in '
                         f'this checkout yet; available now: {", ".join(available_suites())}') from error
    build = getattr(module, function_name, None)
    if build is None:
        raise SuiteError(f'suite {name!r}: benchmarks/suites/{module_name.lstrip(".")}.py has no '
                         f'{function_name}(options, quick)')
    suite = build(dict(options or {}), quick)
    if not isinstance(suite, Suite):
        raise SuiteError(f'suite {name!r}: {function_name} returned {type(suite).__name__}, not a Suite')
    return suite


def available_suites():
    """The registered suites whose module can be found in this checkout."""
    return [name for name in suite_names()
            if importlib.util.find_spec(SUITES[name][0], __name__) is not None]
