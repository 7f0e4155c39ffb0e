"""Multi-layer perceptrons for the embedded benchmarks (digits images, the paper's 1-D toy regression)."""
from torch import nn

from ..registry import register_new_model

__all__ = ['mlp']

ACTIVATIONS = {'relu': nn.ReLU, 'sigmoid': nn.Sigmoid, 'tanh': nn.Tanh}


@register_new_model
def mlp(input_dim, hidden_dims, num_classes, activation='relu', dropout=0.0):
    """``Flatten -> [Linear -> activation (-> Dropout)] * len(hidden_dims) -> Linear(num_classes)``.

    .. code-block:: yaml

        student_model: {key: 'mlp', kwargs: {input_dim: 64, hidden_dims: [4], num_classes: 10}}
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f'activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}')
    layers, width = [nn.Flatten()], input_dim
    for hidden_dim in hidden_dims:
        layers += [nn.Linear(width, hidden_dim), ACTIVATIONS[activation]()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = hidden_dim
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)
