import pytest
import torch

from diffnas.ops import OPS, make_op


@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("search", [True, False])
def test_op_shape_and_gradient(name, stride, search):
    torch.manual_seed(0)
    op = make_op(name, 8, stride, search)
    x = torch.randn(2, 8, 12, 12, requires_grad=True)
    y = op(x)
    assert y.shape == (2, 8, 12 // stride, 12 // stride)
    (y * torch.randn_like(y)).sum().backward()
    for n, p in op.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}: no gradient for {n}"
    if name != "none":
        assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("size", [7, 9, 28])
def test_factorized_reduce_odd_sizes(size):
    op = make_op("skip_connect", 4, 2, True)
    assert op(torch.randn(1, 4, size, size)).shape[-1] == (size + 1) // 2


def test_search_bn_has_no_affine_weights_and_pool_gets_bn():
    assert sum(p.numel() for p in make_op("sep_conv_3x3", 4, 1, True).parameters()) == 2 * (9 * 4 + 16)
    assert sum(p.numel() for p in make_op("sep_conv_3x3", 4, 1, False).parameters()) == 2 * (9 * 4 + 16 + 8)
    pool = make_op("max_pool_3x3", 4, 1, True)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in pool.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in make_op("max_pool_3x3", 4, 1, False).modules())
