import subprocess
import sys

import pytest

SNAPSHOT = '''
import json
from torchdistill.core.interfaces import registry as interfaces
from torchdistill.datasets import registry as datasets
from torchdistill.losses import registry as losses
from torchdistill.models import registry as models
from torchdistill.optim import registry as optim
import torchdistill.core.distillation, torchdistill.core.training, torchdistill.losses.mid_level, torchdistill.models
dicts = {name: getattr(module, name) for module in (interfaces, datasets, losses, models, optim)
         for name in dir(module) if name.endswith('_DICT') and isinstance(getattr(module, name), dict)}
before = {name: {key: id(value) for key, value in d.items()} for name, d in dicts.items()}
import plugins
after = {name: {key: id(value) for key, value in d.items()} for name, d in dicts.items()}
print(json.dumps({'before': before, 'after': after}, default=str))
'''


def test_import_only_extends_torchdistill_registries():
    import json
    output = subprocess.run([sys.executable, '-c', SNAPSHOT], capture_output=True, text=True, check=True).stdout
    snapshot = json.loads(output.strip().splitlines()[-1])
    added = {}
    for name, before in snapshot['before'].items():
        after = snapshot['after'][name]
        for key, identity in before.items():
            assert after[key] == identity, f'{name}[{key!r}] was replaced by importing plugins'
        added[name] = sorted(set(after) - set(before))
    assert {'AnnealingKDLoss', 'ContinuationKDLoss'} <= set(added['MIDDLE_LEVEL_LOSS_DICT'])
    assert added['LOSS_WRAPPER_DICT'] == ['AnnealedTeacherLossWrapper']
    assert 'advance_loss_schedules' in added['PRE_EPOCH_PROC_FUNC_DICT']
    assert 'mlp' in added['MODEL_DICT']


def test_registering_an_existing_key_is_refused():
    from plugins.registry import register_new_mid_level_loss, register_new_model
    with pytest.raises(KeyError, match="'KDLoss' is already registered"):
        @register_new_mid_level_loss
        class KDLoss:  # noqa: F811
            pass
    with pytest.raises(KeyError, match="'mlp' is already registered"):
        register_new_model(key='mlp')(lambda: None)
