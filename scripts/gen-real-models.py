"""Exports torchvision's ResNet-18, MobileNetV2 and SqueezeNet 1.1 to ONNX
with reference outputs, laid out as ONNX backend test cases:

    OUT/<name>/model.onnx
    OUT/<name>/test_data_set_0/input_0.pb, output_0.pb

Random weights from a fixed seed, eval mode, opset 13, batch 1, one fixed
input.  Needs Debian's python3-torch and python3-torchvision; run with
/usr/bin/python3.  usage: gen-real-models.py OUT [NAME...]
"""
import os
import sys

MODELS = ['resnet18', 'mobilenet_v2', 'squeezenet1_1']


def tensor_pb(array, name, path):
    from onnx import numpy_helper
    with open(path, 'wb') as f:
        f.write(numpy_helper.from_array(array, name).SerializeToString())


def export(name, out):
    import torch
    import torchvision
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).eval()
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    d = os.path.join(out, name)
    os.makedirs(os.path.join(d, 'test_data_set_0'), exist_ok=True)
    with torch.no_grad():
        y = model(x)
        torch.onnx.export(model, x, os.path.join(d, 'model.onnx'),
                          opset_version=13, input_names=['input'],
                          output_names=['output'])
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
