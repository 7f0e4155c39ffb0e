"""Reading a config's shape without building it, epoch budgets as overrides, and content hashes.

The harness must know a config's stages (to split an epoch budget) and fingerprint it (to reuse finished runs)
without executing its ``!import_call`` tags, which would load data sets. torchdistill's own loader builds
everything, so the shape is read here with a YAML loader that keeps tagged nodes as plain data; stages and dotted
keys are read with the runner's own plumbing (:mod:`plugins.config_util`).
"""
import copy
import hashlib
import json
from typing import Any, Dict, List, Mapping, Optional, Tuple

import yaml

from plugins.config_loading import yaml_syntax_error
from plugins.config_util import apply_overrides, check_integer, has_dotted, stage_configs
from plugins.errors import ConfigError

__all__ = ['read_structure', 'apply_dotted', 'stage_epochs', 'budget_overrides', 'config_hash']


class _TagAgnosticLoader(yaml.SafeLoader):
    """A SafeLoader that reads ``!tag`` nodes as the plain mapping / sequence / scalar under the tag."""


def _plain(loader, tag_suffix, node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_TagAgnosticLoader.add_multi_constructor('!', _plain)


def read_structure(path: str) -> dict:
    """The config at ``path`` as plain data (tags ignored, nothing imported or built).

    :class:`~plugins.errors.ConfigError` names the file when it is not valid YAML or not a mapping.
    """
    try:
        with open(path, 'r', encoding='utf-8') as fp:
            structure = yaml.load(fp, Loader=_TagAgnosticLoader)
    except yaml.MarkedYAMLError as error:
        raise yaml_syntax_error(path, error) from None
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConfigError(f'{path}: cannot read the config: {" ".join(str(error).split())}') from None
    if not isinstance(structure, dict) or not isinstance(structure.get('train'), dict):
        what = 'empty' if structure is None else f'a {type(structure).__name__}'
        raise ConfigError(f'{path}: a config is a mapping with the sections datasets, models, train and test, '
                          f'got {what}' + ('' if not isinstance(structure, dict) else ' without a train mapping'))
    return structure




def apply_dotted(structure: dict, overrides: Optional[Mapping[str, Any]]) -> dict:
    """A copy of ``structure`` with dotted-key ``overrides`` set as the runner sets them; ``KeyError`` names a key
    the config lacks."""
    try:
        return apply_overrides(copy.deepcopy(structure), overrides)
    except ConfigError as error:
        raise KeyError(str(error)) from None


def stage_epochs(structure: dict) -> List[Tuple[str, Any]]:
    """[(dotted key of num_epochs, epochs)] of each training stage, in order."""
    return [(f'{field}.num_epochs', stage.get('num_epochs')) for field, stage in stage_configs(structure['train'])]


def budget_overrides(structure: dict, budget: int) -> Dict[str, int]:
    """Overrides giving a config ``budget`` epochs in total; several stages keep their proportions.

    Stage lengths are rounded by largest remainder, each at least 1 epoch, so they always sum to ``budget``.
    """
    check_integer(budget, 'epoch budget')
    stages = stage_epochs(structure)
    for key, epochs in stages:
        check_integer(epochs, key, note=' to split an epoch budget')
    if budget < len(stages):
        raise ValueError(f'epoch budget {budget} is smaller than the number of stages ({len(stages)})')
    total = sum(epochs for _, epochs in stages)
    shares = [budget * epochs / total for _, epochs in stages]
    counts = [max(1, int(share)) for share in shares]
    order = sorted(range(len(stages)), key=lambda i: shares[i] - int(shares[i]), reverse=True)
    index = 0
    while sum(counts) != budget:
        i = order[index % len(order)]
        if sum(counts) < budget:
            counts[i] += 1
        elif counts[i] > 1:
            counts[i] -= 1
        index += 1
    return {key: count for (key, _), count in zip(stages, counts)}


def config_hash(config_path: str, overrides: Optional[Mapping[str, Any]] = None, upstream: Optional[str] = None,
                environment: Optional[Mapping[str, Any]] = None) -> str:
    """sha256 (16 hex digits) of everything that changes a run's result but its seed: the config file's bytes,
    the effective overrides, the upstream run's hash and the ``environment`` (e.g. ``{'device': 'cuda',
    'world_size': 8}``: a torchrun run differs from a single-process one).

    ``upstream`` is the hash of the teacher run a student learns from, so retraining a teacher with another
    config invalidates the students distilled from it.
    """
    digest = hashlib.sha256()
    with open(config_path, 'rb') as fp:
        digest.update(fp.read())
    digest.update(json.dumps(overrides or {}, sort_keys=True, default=str).encode('utf-8'))
    digest.update(str(upstream or '').encode('utf-8'))
    if environment:
        digest.update(json.dumps(environment, sort_keys=True, default=str).encode('utf-8'))
    return digest.hexdigest()[:16]
