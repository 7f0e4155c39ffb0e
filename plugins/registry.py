"""Registration that only ever extends torchdistill's registries.

torchdistill's ``register_*`` decorators silently overwrite an existing key. Ours refuse a key that is
already taken, so importing ``plugins`` can never change what an existing config means.
"""
from torchdistill.core.interfaces.registry import POST_EPOCH_PROC_FUNC_DICT, PRE_EPOCH_PROC_FUNC_DICT, \
    register_post_epoch_proc_func, register_pre_epoch_proc_func
from torchdistill.datasets.registry import COLLATE_FUNC_DICT, DATASET_DICT, DATASET_WRAPPER_DICT, \
    register_collate_func, register_dataset, register_dataset_wrapper
from torchdistill.losses.registry import FUNC2EXTRACT_MODEL_OUTPUT_DICT, LOSS_DICT, LOSS_WRAPPER_DICT, \
    MIDDLE_LEVEL_LOSS_DICT, register_func2extract_model_output, register_loss_wrapper, register_mid_level_loss
from torchdistill.models.registry import AUXILIARY_MODEL_WRAPPER_DICT, MODEL_DICT, register_auxiliary_model_wrapper, \
    register_model
from torchdistill.optim.registry import SCHEDULER_DICT, register_scheduler

__all__ = ['register_new_mid_level_loss', 'register_new_loss_wrapper', 'register_new_model',
           'register_new_pre_epoch_proc_func', 'register_new_post_epoch_proc_func', 'register_new_dataset',
           'register_new_dataset_wrapper',
           'register_new_auxiliary_model_wrapper', 'register_new_collate_func', 'register_new_scheduler',
           'register_new_func2extract_model_output']


def _refusing(register, *registries):
    def decorator_factory(arg=None, key=None):
        def decorate(obj):
            name = key or obj.__name__
            for registry in registries:
                existing = registry.get(name)
                if existing is not None and existing is not obj:
                    raise KeyError(f'{name!r} is already registered in torchdistill by {existing!r}; '
                                   f'refusing to overwrite it')
            return register(obj) if key is None else register(key=key)(obj)
        return decorate(arg) if callable(arg) else decorate
    return decorator_factory


register_new_mid_level_loss = _refusing(register_mid_level_loss, MIDDLE_LEVEL_LOSS_DICT, LOSS_DICT)
register_new_loss_wrapper = _refusing(register_loss_wrapper, LOSS_WRAPPER_DICT)
register_new_model = _refusing(register_model, MODEL_DICT)
register_new_pre_epoch_proc_func = _refusing(register_pre_epoch_proc_func, PRE_EPOCH_PROC_FUNC_DICT)
register_new_post_epoch_proc_func = _refusing(register_post_epoch_proc_func, POST_EPOCH_PROC_FUNC_DICT)
register_new_dataset = _refusing(register_dataset, DATASET_DICT)
register_new_dataset_wrapper = _refusing(register_dataset_wrapper, DATASET_WRAPPER_DICT)
register_new_auxiliary_model_wrapper = _refusing(register_auxiliary_model_wrapper, AUXILIARY_MODEL_WRAPPER_DICT)
register_new_collate_func = _refusing(register_collate_func, COLLATE_FUNC_DICT)
register_new_scheduler = _refusing(register_scheduler, SCHEDULER_DICT)
register_new_func2extract_model_output = _refusing(register_func2extract_model_output, FUNC2EXTRACT_MODEL_OUTPUT_DICT)
