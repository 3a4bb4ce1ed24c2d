import pytest
import torch

from diffnas.ops import PRIMITIVES
from diffnas.supernet import MixedOp, Supernet, channel_shuffle, edge_list


def op_weights(name, c, stride):
    """Parameters of one candidate op in the search network (BN without affine weights)."""
    if name.startswith("sep_conv"):
        k = int(name[-1])
        return 2 * (k * k * c + c * c)
    if name.startswith("dil_conv"):
        k = int(name[-1])
        return k * k * c + c * c
    if name == "skip_connect" and stride == 2:
        return c * c  # factorized reduce: two 1x1 convs c -> c/2
    return 0


def expected_weights(layers, c, nodes, ops, classes=10, in_ch=3, stem=3, k=1):
    """The original DARTS search network's weight count, by hand (quark0/darts model_search.py)."""
    total = in_ch * stem * c * 9 + 2 * stem * c  # stem conv + affine BN
    cpp, cp, cc = stem * c, stem * c, c
    red_prev = False
    for i in range(layers):
        red = i in (layers // 3, 2 * layers // 3)
        if red:
            cc *= 2
        total += cpp * cc + cp * cc  # preprocess0 (ReLUConvBN or FactorizedReduce), preprocess1
        for src, _ in edge_list(nodes):
            stride = 2 if red and src < 2 else 1
            total += sum(op_weights(o, cc // k, stride) for o in ops)
        red_prev = red
        cpp, cp = cp, nodes * cc
    return total + cp * classes + classes


@pytest.mark.parametrize("layers,c,nodes", [(8, 16, 4), (5, 8, 3), (6, 4, 2), (3, 6, 4)])
def test_weight_count_matches_original_formula(layers, c, nodes):
    net = Supernet(c, 10, layers, nodes, PRIMITIVES)
    assert sum(p.numel() for p in net.parameters()) == expected_weights(layers, c, nodes, PRIMITIVES)


def test_paper_supernet_is_about_1_93m():
    n = sum(p.numel() for p in Supernet(16, 10, 8, 4).parameters())
    assert abs(n - 1.93e6) < 0.01e6


def test_weight_count_partial_channels_and_op_subset():
    ops = ("none", "skip_connect", "sep_conv_3x3", "dil_conv_5x5")
    net = Supernet(8, 10, 5, 3, ops, in_channels=1, partial=4)
    assert sum(p.numel() for p in net.parameters()) == expected_weights(5, 8, 3, ops, in_ch=1, k=4)


@pytest.mark.parametrize("nodes", [3, 4])
def test_forward_shapes_grayscale_and_odd_sizes(nodes):
    net = Supernet(4, 7, 5, nodes, in_channels=1)
    e = len(edge_list(nodes))
    psi = torch.softmax(torch.randn(5, e, len(PRIMITIVES)), -1)
    assert net(torch.randn(2, 1, 28, 28), psi).shape == (2, 7)


def test_mixed_op_is_weighted_sum_of_ops():
    torch.manual_seed(0)
    m = MixedOp(4, 1, PRIMITIVES)
    m.eval()
    x = torch.randn(2, 4, 6, 6)
    psi = torch.softmax(torch.randn(len(PRIMITIVES)), 0)
    expected = sum(psi[o] * op(x) for o, op in zip(m.active, m.ops))
    torch.testing.assert_close(m(x, psi), expected)
    # one-hot weights select a single op
    one = torch.zeros(len(PRIMITIVES))
    one[PRIMITIVES.index("skip_connect")] = 1
    torch.testing.assert_close(m(x, one), x)


def shuffled_order(c, k):
    """PC-DARTS channel_shuffle: channels in k groups of c/k, read out column by column, written here
    by the definition (output position j*k + g holds input channel g*(c/k) + j)."""
    return [g * (c // k) + j for j in range(c // k) for g in range(k)]


def test_channel_shuffle_interleaves_the_groups():
    x = torch.arange(8.0).view(1, 8, 1, 1)
    assert channel_shuffle(x, 4).flatten().tolist() == [0, 2, 4, 6, 1, 3, 5, 7]
    x = torch.randn(2, 12, 3, 3)
    torch.testing.assert_close(channel_shuffle(x, 4), x[:, shuffled_order(12, 4)])


def pc_edge_reference(m, x, w, b):
    """One PC-DARTS edge by its definition (yuhuixu1993/PC-DARTS model_search.py): the first C/K
    channels through the ops weighted by softmax(alpha) w, the rest max-pooled 2x2 on a reduction
    edge, concatenated, shuffled, and the whole edge output times its edge weight b."""
    c = x.shape[1]
    part, rest = x[:, :c // m.partial], x[:, c // m.partial:]
    ops = sum(w[o] * op(part) for o, op in zip(m.active, m.ops))
    if m.stride == 2:
        rest = torch.nn.functional.max_pool2d(rest, 2, 2)
    return b * torch.cat([ops, rest], dim=1)[:, shuffled_order(c, m.partial)]


@pytest.mark.parametrize("stride", [1, 2])
def test_pc_darts_edge_weight_scales_the_bypassed_channels_too(stride):
    torch.manual_seed(0)
    m = MixedOp(8, stride, PRIMITIVES, partial=4).double()
    x = torch.randn(2, 8, 6, 6, dtype=torch.float64)
    w = torch.softmax(torch.randn(len(PRIMITIVES), dtype=torch.float64), 0)
    b = torch.tensor(0.3, dtype=torch.float64)
    # the supernet gets psi = b * w (the ops' weights with the edge factor in) and b for the bypass
    torch.testing.assert_close(m(x, b * w, b), pc_edge_reference(m, x, w, b))


def test_pc_darts_supernet_matches_the_definition_and_beta_gets_the_bypass_gradient():
    """The whole search network under PC-DARTS (partial channels K=4, edge normalisation) against a
    forward written from the definition: node i = sum_j beta_ij * edge_ij(h_j), beta softmax over
    the node's inputs; logits and the gradients of alpha and beta agree."""
    from diffnas import arch as arch_lib

    torch.manual_seed(1)
    nodes = 2
    net = Supernet(8, 10, 3, nodes, PRIMITIVES, partial=4).double()
    arch = arch_lib.build("pc", 3, nodes, PRIMITIVES, net.reductions).double()
    with torch.no_grad():
        for p in arch.parameters():
            p.normal_()   # far from uniform, so a missing edge factor shows
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3])

    def reference():
        s0 = s1 = net.stem(x)
        for k, cell in enumerate(net.cells):
            kind = "reduce" if k in net.reductions else "normal"
            alpha, beta = getattr(arch, f"alpha_{kind}"), getattr(arch, f"beta_{kind}")
            states, e = [cell.preprocess0(s0), cell.preprocess1(s1)], 0
            for i in range(nodes):
                b = torch.softmax(beta[e:e + i + 2], 0)
                states.append(sum(pc_edge_reference(cell.edges[e + j], h, torch.softmax(alpha[e + j], 0), b[j])
                                  for j, h in enumerate(states)))
                e += i + 2
            s0, s1 = s1, torch.cat(states[2:], dim=1)
        return net.classifier(net.pool(s1).flatten(1))

    got, want = net(x, *arch()), reference()
    torch.testing.assert_close(got, want)
    grads = [torch.autograd.grad(torch.nn.functional.cross_entropy(out, y), list(arch.parameters()))
             for out in (got, want)]
    for g, r in zip(*grads):
        torch.testing.assert_close(g, r)


def test_partial_channels_route_one_kth_through_ops():
    k = 4
    m = MixedOp(16, 1, PRIMITIVES, partial=k)
    x = torch.randn(2, 16, 5, 5)
    # with only skip_connect on, the output is a channel permutation of the input
    one = torch.zeros(len(PRIMITIVES))
    one[PRIMITIVES.index("skip_connect")] = 1
    y = m(x, one)
    assert y.shape == x.shape
    torch.testing.assert_close(y, x[:, shuffled_order(16, k)])
    # zero op weights zero exactly the C/K processed channels, the rest bypass unchanged
    y0 = m(x, torch.zeros(len(PRIMITIVES)))
    zeroed = (y0.abs().sum(dim=(0, 2, 3)) == 0).sum().item()
    assert zeroed == 16 // k
    # reduction: shapes halve on both paths
    m2 = MixedOp(16, 2, PRIMITIVES, partial=k)
    assert m2(x, one).shape == (2, 16, 3, 3)


def test_none_is_not_computed_but_contributes_zero():
    m = MixedOp(4, 1, ("none", "skip_connect"))
    assert len(m.ops) == 1
    x = torch.randn(1, 4, 3, 3)
    torch.testing.assert_close(m(x, torch.tensor([0.7, 0.3])), 0.3 * x)


def test_architecture_weights_of_other_sizes_are_refused():
    """psi of a larger search space ran and gave logits: the supernet read only the part it indexes."""
    net = Supernet(4, 10, 3, 2, ("skip_connect", "max_pool_3x3"))
    x = torch.randn(2, 3, 8, 8)
    assert net(x, torch.rand(3, 5, 2)).shape == (2, 10)
    for psi, edge in ((torch.rand(5, 14, 8), None), (torch.rand(3, 5, 3), None), (torch.rand(3, 5, 2), torch.rand(3, 4))):
        with pytest.raises(ValueError, match=r"do not fit this supernet: psi \(layers, edges, ops\) = \(3, 5, 2\)"):
            net(x, psi, edge)


def test_the_pieces_refuse_a_search_space_they_cannot_have_in_one_line():
    """arch.build read a string of ops as its letters, took reductions out of range (a StopIteration from
    genotype()) and nodes=0; Supernet took 1 or 2 cells, nodes=0 (an error at the first forward) and
    partial channels that do not divide channels (an error deep in FactorizedReduce)."""
    from diffnas import arch as arch_lib
    from diffnas.errors import ConfigError

    ops = ("skip_connect", "sep_conv_3x3")
    for call, message in (
            (lambda: arch_lib.build("softmax", 3, 2, "sep_conv_3x3", [1, 2]),
             r"^ops: expected a list of op names, got the string 'sep_conv_3x3' \(\['sep_conv_3x3'\] for one op\)$"),
            (lambda: arch_lib.build("softmax", 3, 2, ("skip_connect", "conv_1x1"), [1, 2]),
             "^ops: unknown op 'conv_1x1'"),
            (lambda: arch_lib.build("softmax", 3, 2, ops * 2, [1, 2]), "^ops: an op is listed twice"),
            (lambda: arch_lib.build("softmax", 3, 2, ops, [1, 3]),
             r"^reductions: expected distinct layer indices in 0..2, got \[1, 3\]$"),
            (lambda: arch_lib.build("softmax", 3, 0, ops, [1, 2]), "^nodes: must be an int >= 1, got 0$"),
            (lambda: Supernet(4, 3, 2, 2, ops), "^layers: must be an int >= 3, got 2$"),
            (lambda: Supernet(4, 3, 3, 0, ops), "^nodes: must be an int >= 1, got 0$"),
            (lambda: Supernet(6, 3, 3, 2, ops, partial=4), r"^partial: 4 must divide channels \(6\)$"),
            (lambda: Supernet(4, 3, 3, 2, "sep_conv_3x3"), "^ops: expected a list of op names, got the string")):
        with pytest.raises(ConfigError, match=message):
            call()
    # 1e5 nodes: refused by arithmetic, before any list of edges is made (5e9 of them)
    for call in (lambda: Supernet(4, 3, 3, 100_000, ops), lambda: arch_lib.build("softmax", 3, 100_000, ops, [1, 2])):
        with pytest.raises(ConfigError, match=r"^layers, nodes, ops: a supernet of 3 cells x 5000150000 edges x 2 ops"):
            call()
    net = Supernet(4, 3, 3, 2, ops, partial=2)   # what they take, they build
    assert arch_lib.build("softmax", 3, 2, ops, net.reductions).weights().shape == (3, 5, 2)
    import numpy as np

    sweep = Supernet(np.int64(4), 3, np.int64(3), np.int64(2), ops)   # a sweep's numpy sizes, as configs take them
    assert arch_lib.build("softmax", np.int64(3), np.int64(2), ops, [np.int64(r) for r in sweep.reductions])
