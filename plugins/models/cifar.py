"""The CIFAR models of the Annealing-KD paper's image experiments that torchdistill lacks.

- ``resnet8``: the CIFAR ResNet of He et al. (2016) with one basic block per stage (16/32/64 channels), built by
  torchdistill's own CIFAR ResNet builder (torchdistill already registers resnet20/32/44/56/110).
- ``plain_cnn2``, ``plain_cnn4``, ``plain_cnn10``: the plain CNNs of TAKD (Mirzadeh et al., "Improved Knowledge
  Distillation via Teacher Assistant", AAAI 2020), the student / TA / teacher of the paper's CNN experiments.
"""
from torch import nn
from torchdistill.models.classification.resnet import resnet as cifar_resnet

from ..registry import register_new_model

__all__ = ['resnet8', 'PlainCNN', 'PLAIN_CNN_PLANS', 'plain_cnn2', 'plain_cnn4', 'plain_cnn10']

# Layer plans of TAKD's model_factory.py / plain_cnn_cifar.py (github.com/imirzadeh/Teacher-Assistant-Knowledge-
# Distillation, "plane" networks; the same tables are in the Annealing-KD authors' copy, github.com/huawei-noah/
# Efficient-NLP, Annealing_KD/computer_vision_tasks/plain_cnn_cifar.py). An int is a 3x3 convolution with that many
# filters (+ BatchNorm + ReLU), 'M' a 2x2 max-pool, and ('fc', n) a hidden fully connected layer (+ ReLU); the
# classifier (num_classes outputs) always follows. TAKD picks the narrower cifar10 plans for 10 classes and the
# cifar100 plans otherwise.
PLAIN_CNN_PLANS = {
    'cifar10': {
        2: [16, 'M', 16, 'M'],
        4: [16, 16, 'M', 32, 32, 'M'],
        10: [32, 32, 'M', 64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', ('fc', 128)],
    },
    'cifar100': {
        2: [32, 'M', 32, 'M'],
        4: [32, 32, 'M', 64, 64, 'M'],
        10: [32, 32, 'M', 64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', ('fc', 512)],
    },
}


@register_new_model
def resnet8(num_classes=10, pretrained=False, progress=True, **kwargs):
    """ResNet-8 for CIFAR: torchdistill's ``resnet(depth=8)`` (one basic block per stage, 78,042 parameters for 10
    classes), the student of the Annealing-KD and TAKD papers. No pretrained weights exist.

    .. code-block:: yaml

        student_model: {key: 'resnet8', kwargs: {num_classes: 10}}
    """
    if pretrained:
        raise ValueError('resnet8: pretrained must be false, there are no published ResNet-8 weights; '
                         'train one with yaml_configs/<dataset>/ce/resnet8.yaml')
    return cifar_resnet(8, num_classes, False, progress, **kwargs)


class PlainCNN(nn.Module):
    """A plain (non-residual) CNN for 32x32 RGB images from a TAKD layer plan (see ``PLAIN_CNN_PLANS``).

    ``conv_layers`` (Conv3x3 with bias -> BatchNorm -> ReLU, and 2x2 max-pools) then ``fc_layers`` (hidden
    Linear -> ReLU, then Linear(num_classes)); the module names and order follow TAKD's ``ConvNetMaker``, so
    its checkpoints' state dicts load as they are.
    """

    def __init__(self, plan, num_classes, in_channels=3, image_size=32):
        super().__init__()
        conv_layers, fc_layers, channels, size = [], [], in_channels, image_size
        features = None
        for layer in plan:
            if layer == 'M':
                conv_layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                size //= 2
            elif isinstance(layer, int):
                conv_layers += [nn.Conv2d(channels, layer, kernel_size=3, padding=1), nn.BatchNorm2d(layer),
                                nn.ReLU(inplace=True)]
                channels = layer
            elif isinstance(layer, tuple) and layer[0] == 'fc':
                features = features or channels * size * size
                fc_layers += [nn.Linear(features, layer[1]), nn.ReLU(inplace=True)]
                features = layer[1]
            else:
                raise ValueError(f"plan entries must be an int (conv filters), 'M' or ('fc', width), got {layer!r}")
        fc_layers.append(nn.Linear(features or channels * size * size, num_classes))
        self.conv_layers = nn.Sequential(*conv_layers)
        self.fc_layers = nn.Sequential(*fc_layers)

    def forward(self, x):
        return self.fc_layers(self.conv_layers(x).flatten(1))


def _plain_cnn(depth, num_classes, plan):
    if plan is None:
        plan = 'cifar10' if num_classes == 10 else 'cifar100'
    if plan not in PLAIN_CNN_PLANS:
        raise ValueError(f'plan must be one of {sorted(PLAIN_CNN_PLANS)} (or null to choose by num_classes), '
                         f'got {plan!r}')
    return PlainCNN(PLAIN_CNN_PLANS[plan][depth], num_classes)


@register_new_model
def plain_cnn2(num_classes=10, plan=None):
    """TAKD's 2-layer plain CNN (the Annealing-KD paper's CNN student): conv-pool-conv-pool-linear.

    ``plan`` chooses the filter widths (``cifar10``: 16, ``cifar100``: 32); by default, as in TAKD, the cifar10
    plan for 10 classes and the cifar100 plan otherwise.

    .. code-block:: yaml

        student_model: {key: 'plain_cnn2', kwargs: {num_classes: 100}}
    """
    return _plain_cnn(2, num_classes, plan)


@register_new_model
def plain_cnn4(num_classes=10, plan=None):
    """TAKD's 4-layer plain CNN (the Annealing-KD paper's CNN teacher assistant); see :func:`plain_cnn2`.

    .. code-block:: yaml

        teacher_model: {key: 'plain_cnn4', kwargs: {num_classes: 10}}
    """
    return _plain_cnn(4, num_classes, plan)


@register_new_model
def plain_cnn10(num_classes=10, plan=None):
    """TAKD's 10-layer plain CNN (8 convolutions, 2 linear layers; the Annealing-KD paper's CNN teacher);
    see :func:`plain_cnn2`.

    .. code-block:: yaml

        teacher_model: {key: 'plain_cnn10', kwargs: {num_classes: 10}}
    """
    return _plain_cnn(10, num_classes, plan)
