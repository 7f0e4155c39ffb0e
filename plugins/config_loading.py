"""Reads a torchdistill YAML config (its ``!import_call``... tags included) with one-line errors naming the field.

torchdistill's ``yaml_util.load_yaml_file`` lets a syntax error, an empty file or a failing ``!import_call``
(e.g. a data set asked for an unknown split) escape as a raw traceback. This loader uses the same tag
constructors (torchdistill's own functions) and turns each failure into a :class:`ConfigError` that names the
file and the dotted path of the node that failed.
"""
import os

import yaml
from torchdistill.common import main_util, yaml_util

from .errors import ConfigError, one_line

__all__ = ['ConfigLoader', 'read_config_file', 'memoizing_loader', 'yaml_syntax_error', 'REQUIRED_SECTIONS']

REQUIRED_SECTIONS = ('datasets', 'models', 'train', 'test')
TAG_CONSTRUCTORS = {
    '!join': yaml_util.yaml_join, '!pathjoin': yaml_util.yaml_pathjoin, '!expanduser': yaml_util.yaml_expanduser,
    '!abspath': yaml_util.yaml_abspath, '!import_get': yaml_util.yaml_import_get,
    '!import_call': yaml_util.yaml_import_call, '!import_call_method': yaml_util.yaml_import_call_method,
    '!call_method': yaml_util.yaml_call_method, '!getattr': yaml_util.yaml_getattr,
    '!setattr': yaml_util.yaml_setattr, '!access_by_index_or_key': yaml_util.yaml_access_by_index_or_key,
}


class _NodeFailure(Exception):
    """A tag constructor failed on ``node``; carries the original error up to :func:`read_config_file`."""

    def __init__(self, node, error):
        super().__init__(str(error))
        self.node, self.error = node, error


class ConfigLoader(yaml.FullLoader):
    """torchdistill's YAML dialect; remembers which node's construction failed."""

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep=deep)
        except _NodeFailure:
            raise
        except Exception as error:  # noqa: BLE001 (any failure of a tag's call is reported with its node)
            raise _NodeFailure(node, error) from error


for _tag, _constructor in TAG_CONSTRUCTORS.items():
    ConfigLoader.add_constructor(_tag, _constructor)


def memoizing_loader(memo: dict) -> type:
    """A :class:`ConfigLoader` whose ``!import_call`` results are shared through ``memo`` (keyed by the call), so
    checking many configs that build the same data sets builds each one once."""
    class MemoizingLoader(ConfigLoader):
        pass

    def import_call(loader, node):
        entry = loader.construct_mapping(node, deep=True)
        key = repr(sorted(entry.items(), key=lambda item: str(item[0])))
        if key not in memo:
            memo[key] = main_util.import_call(**entry)
        return memo[key]

    MemoizingLoader.add_constructor('!import_call', import_call)
    return MemoizingLoader


def _path_to(node, target, path=()):
    """The keys leading from ``node`` to ``target`` in a composed YAML tree, or None."""
    if node is target:
        return path
    if isinstance(node, yaml.MappingNode):
        children = [(str(getattr(key, 'value', '?')), value) for key, value in node.value]
    elif isinstance(node, yaml.SequenceNode):
        children = [(f'[{index}]', value) for index, value in enumerate(node.value)]
    else:
        return None
    for name, child in children:
        found = _path_to(child, target, path + (name,))
        if found is not None:
            return found
    return None


def _call_name(node):
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if getattr(key, 'value', None) == 'key' and isinstance(value, yaml.ScalarNode):
                return f' {value.value!r}'
    return ''


def _describe(path, root, failure):
    field = '.'.join(_path_to(root, failure.node) or ()).replace('.[', '[') or 'the top level'
    line = failure.node.start_mark.line + 1
    return (f'{path}: {field} (line {line}): {failure.node.tag}{_call_name(failure.node)} failed: '
            f'{one_line(failure.error)}')


def yaml_syntax_error(path: str, error: yaml.MarkedYAMLError) -> ConfigError:
    """The :class:`ConfigError` for a YAML syntax error in ``path``, with its line and column."""
    mark = error.problem_mark or error.context_mark
    where = f' at line {mark.line + 1}, column {mark.column + 1}' if mark else ''
    return ConfigError(f'{path}: not valid YAML: {error.problem or error.context}{where}')


def read_config_file(path: str, loader_class: type = ConfigLoader) -> dict:
    """The config at ``path`` as torchdistill would load it; :class:`ConfigError` for an unreadable file, invalid
    YAML, an empty file, a top level that is not a mapping, or a tag (``!import_call``...) whose call fails."""
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        raise ConfigError(f'--config: no file at {path!r}')
    root = None
    try:
        with open(path, 'r', encoding='utf-8') as fp:
            loader = loader_class(fp)
            try:
                root = loader.get_single_node()
                config = None if root is None else loader.construct_document(root)
            finally:
                loader.dispose()
    except _NodeFailure as failure:
        raise ConfigError(_describe(path, root, failure)) from failure.error
    except yaml.MarkedYAMLError as error:
        raise yaml_syntax_error(path, error) from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConfigError(f'{path}: not a YAML text file: {one_line(error)}') from None
    if config is None:
        raise ConfigError(f'{path} is empty: a config is a mapping with the sections {list(REQUIRED_SECTIONS)}')
    if not isinstance(config, dict):
        raise ConfigError(f'{path} holds a {type(config).__name__} at the top level: a config is a mapping with the '
                          f'sections {list(REQUIRED_SECTIONS)}')
    return config
