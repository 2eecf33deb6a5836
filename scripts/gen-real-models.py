"""Exports torchvision's ResNet-18, MobileNetV2 and SqueezeNet 1.1 to ONNX
with reference outputs, laid out as ONNX backend test cases:

    OUT/<name>/model.onnx
    OUT/<name>/test_data_set_0/input_0.pb, output_0.pb

Random weights from a fixed seed, eval mode, opset 13, batch 1, one fixed
input.  resnet18_bn (made only when named) is ResNet-18 with random
BatchNormalization statistics and parameters, exported with its
BatchNormalization nodes kept (no constant folding, the training mode
preserved) for the fold_bn pass to fold; its input and output are also
written as input.npy and output.npy.  Needs Debian's python3-torch and
python3-torchvision; run with /usr/bin/python3.
usage: gen-real-models.py OUT [NAME...]
"""
import os
import sys

MODELS = ['resnet18', 'mobilenet_v2', 'squeezenet1_1']


def tensor_pb(array, name, path):
    from onnx import numpy_helper
    with open(path, 'wb') as f:
        f.write(numpy_helper.from_array(array, name).SerializeToString())


def random_bn(model, torch):
    """Gives every BatchNorm2d statistics and parameters far from the
    identity, so that folding them changes the weights."""
    g = torch.Generator().manual_seed(2)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=g) * 0.2)


def export(name, out):
    import numpy as np
    import torch
    import torchvision
    torch.manual_seed(0)
    keep_bn = name == 'resnet18_bn'
    arch = 'resnet18' if keep_bn else name
    model = getattr(torchvision.models, arch)(weights=None).eval()
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    d = os.path.join(out, name)
    os.makedirs(os.path.join(d, 'test_data_set_0'), exist_ok=True)
    with torch.no_grad():
        if keep_bn:
            random_bn(model, torch)
        y = model(x)
        extra = {}
        if keep_bn:
            extra = {'do_constant_folding': False,
                     'training': torch.onnx.TrainingMode.PRESERVE}
        torch.onnx.export(model, x, os.path.join(d, 'model.onnx'),
                          opset_version=13, input_names=['input'],
                          output_names=['output'], **extra)
    if keep_bn:
        np.save(os.path.join(d, 'input.npy'), x.numpy())
        np.save(os.path.join(d, 'output.npy'), y.numpy())
    tensor_pb(x.numpy(), 'input', os.path.join(d, 'test_data_set_0',
                                               'input_0.pb'))
    tensor_pb(y.numpy(), 'output', os.path.join(d, 'test_data_set_0',
                                                'output_0.pb'))


def main():
    out = sys.argv[1]
    for name in sys.argv[2:] or MODELS:
        export(name, out)


if __name__ == '__main__':
    main()
