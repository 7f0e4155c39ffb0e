import pytest
import torch
from torch import nn
from torchdistill.models.classification.resnet import resnet as torchdistill_cifar_resnet
from torchdistill.models.registry import get_model

import plugins  # noqa: F401  (registers the models)
from plugins.models.cifar import PlainCNN


def num_params(model):
    return sum(p.numel() for p in model.parameters())


def conv(c_in, c_out, bias):
    return c_in * c_out * 9 + (c_out if bias else 0)


def bn(c):
    return 2 * c


def linear(n_in, n_out):
    return n_in * n_out + n_out


def resnet8_params(num_classes):
    """He et al.'s CIFAR ResNet with one basic block per stage, counted layer by layer (bias-free convs)."""
    stem = conv(3, 16, False) + bn(16)
    stage1 = 2 * (conv(16, 16, False) + bn(16))
    stage2 = conv(16, 32, False) + conv(32, 32, False) + 2 * bn(32) + 16 * 32 + bn(32)  # 1x1 shortcut + BN
    stage3 = conv(32, 64, False) + conv(64, 64, False) + 2 * bn(64) + 32 * 64 + bn(64)
    return stem + stage1 + stage2 + stage3 + linear(64, num_classes)


# TAKD's plans (conv widths, max-pools halve 32x32, hidden FC width), counted by hand; conv + BN per layer.
EXPECTED = {
    ('resnet8', 10): resnet8_params(10),
    ('resnet8', 100): resnet8_params(100),
    ('plain_cnn2', 10): conv(3, 16, True) + bn(16) + conv(16, 16, True) + bn(16) + linear(8 * 8 * 16, 10),
    ('plain_cnn2', 100): conv(3, 32, True) + bn(32) + conv(32, 32, True) + bn(32) + linear(8 * 8 * 32, 100),
    ('plain_cnn4', 10): (conv(3, 16, True) + conv(16, 16, True) + 2 * bn(16) + conv(16, 32, True)
                         + conv(32, 32, True) + 2 * bn(32) + linear(8 * 8 * 32, 10)),
    ('plain_cnn4', 100): (conv(3, 32, True) + conv(32, 32, True) + 2 * bn(32) + conv(32, 64, True)
                          + conv(64, 64, True) + 2 * bn(64) + linear(8 * 8 * 64, 100)),
    ('plain_cnn10', 10): (conv(3, 32, True) + conv(32, 32, True) + 2 * bn(32) + conv(32, 64, True)
                          + conv(64, 64, True) + 2 * bn(64) + conv(64, 128, True) + conv(128, 128, True)
                          + 2 * bn(128) + conv(128, 256, True) + 3 * conv(256, 256, True) + 4 * bn(256)
                          + linear(2 * 2 * 256, 128) + linear(128, 10)),
}
EXPECTED[('plain_cnn10', 100)] = EXPECTED[('plain_cnn10', 10)] - linear(1024, 128) - linear(128, 10) \
    + linear(1024, 512) + linear(512, 100)


def test_resnet8_has_about_78k_parameters():
    assert resnet8_params(10) == 78042


@pytest.mark.parametrize('key, num_classes', sorted(EXPECTED))
def test_parameter_counts_and_output_shapes(key, num_classes):
    model = get_model(key, num_classes=num_classes)
    assert num_params(model) == EXPECTED[(key, num_classes)]
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(3, 3, 32, 32)).shape == (3, num_classes)


@pytest.mark.parametrize('num_classes', [10, 100])
def test_resnet8_is_torchdistills_cifar_resnet_at_depth_8(num_classes):
    torch.manual_seed(0)
    ours = get_model('resnet8', num_classes=num_classes)
    torch.manual_seed(0)
    reference = torchdistill_cifar_resnet(8, num_classes, False, False)
    assert type(ours) is type(reference)
    ours_state, reference_state = ours.state_dict(), reference.state_dict()
    assert list(ours_state) == list(reference_state)
    for name in ours_state:
        assert torch.equal(ours_state[name], reference_state[name]), name
    assert [len(getattr(ours, f'layer{i}')) for i in (1, 2, 3)] == [1, 1, 1]
    x = torch.randn(2, 3, 32, 32)
    ours.eval(), reference.eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=0)


def test_plain_cnn_layer_order_matches_takd_conv_net_maker():
    model = get_model('plain_cnn10', num_classes=10)
    kinds = [type(m).__name__ for m in model.conv_layers]
    # Conv -> BN -> ReLU per convolution, a max-pool after convolutions 2, 4, 6 and 8.
    block = ['Conv2d', 'BatchNorm2d', 'ReLU']
    assert kinds == 2 * block + ['MaxPool2d'] + 2 * block + ['MaxPool2d'] + 2 * block + ['MaxPool2d'] \
        + 4 * block + ['MaxPool2d']
    assert [m.out_features for m in model.fc_layers if isinstance(m, nn.Linear)] == [128, 10]
    assert isinstance(model.fc_layers[1], nn.ReLU)


def test_plain_cnn_plan_follows_num_classes_unless_given():
    assert get_model('plain_cnn2', num_classes=10).conv_layers[0].out_channels == 16
    assert get_model('plain_cnn2', num_classes=100).conv_layers[0].out_channels == 32
    assert get_model('plain_cnn2', num_classes=20).conv_layers[0].out_channels == 32
    assert get_model('plain_cnn2', num_classes=10, plan='cifar100').conv_layers[0].out_channels == 32


@pytest.mark.parametrize('call, message', [
    (lambda: get_model('plain_cnn4', num_classes=10, plan='imagenet'), "plan must be one of ['cifar10', 'cifar100']"),
    (lambda: get_model('resnet8', num_classes=10, pretrained=True), 'pretrained must be false'),
    (lambda: PlainCNN([16, 'X'], 10), "plan entries must be an int (conv filters), 'M' or ('fc', width)"),
])
def test_bad_arguments_name_the_field(call, message):
    with pytest.raises(ValueError) as error:
        call()
    assert message in str(error.value)
