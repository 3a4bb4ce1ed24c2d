import pytest
import torch

from diffnas import arch as arch_lib
from diffnas.arch import ARCHS, node_softmax, zero_one_loss
from diffnas.discretise import top2_cell
from diffnas.genotype import CellwiseGenotype, Genotype
from diffnas.ops import PRIMITIVES
from diffnas.supernet import Supernet, edge_list

L, N = 8, 4
E, O = len(edge_list(N)), len(PRIMITIVES)
RED = (L // 3, 2 * L // 3)


def build(name, **kw):
    return arch_lib.build(name, L, N, PRIMITIVES, RED, **kw)


@pytest.mark.parametrize("name,count", [
    ("softmax", 2 * E * O), ("sigmoid", 2 * E * O), ("pc", 2 * E * O + 2 * E),
    ("global", L * E * O), ("dnas", L * E + L * O + E * O)])
def test_arch_param_count(name, count):
    assert sum(p.numel() for p in build(name).parameters()) == count


@pytest.mark.parametrize("name", list(ARCHS))
def test_weights_shape_gradient_and_disjoint_from_supernet(name):
    a = build(name, zero_one_weight=10.0)
    psi = a.weights()
    assert psi.shape == (L, E, O)
    # weighted: psi.sum() is constant for softmax, pc and global (rows sum to one), its gradient round-off
    (psi * torch.randn(psi.shape, generator=torch.Generator().manual_seed(0)) + a.regularizer()).sum().backward()
    assert all(p.grad is not None and p.grad.isfinite().all() and p.grad.abs().max() > 1e-3 for p in a.parameters())
    net = Supernet(4, 10, L, N)
    assert not {id(p) for p in net.parameters()} & {id(p) for p in a.parameters()}


def test_initial_values_are_small_gaussians_and_zero_for_fair_darts():
    torch.manual_seed(0)
    a = build("softmax")
    assert 5e-4 < a.alpha_normal.std().item() < 2e-3
    # FairDARTS starts every sigmoid at 0.5 (model_search.py: torch.zeros)
    f = build("sigmoid")
    assert torch.equal(f.weights(), torch.full((L, E, O), 0.5))


def test_softmax_rows_sum_to_one_and_cells_shared():
    a = build("softmax")
    psi = a.weights()
    torch.testing.assert_close(psi.sum(-1), torch.ones(L, E))
    for k in range(L):
        ref = a.alpha_reduce if k in RED else a.alpha_normal
        torch.testing.assert_close(psi[k], torch.softmax(ref, -1))


def test_dnas_psi_equals_formula():
    torch.manual_seed(1)
    a = build("dnas")
    with torch.no_grad():
        for p in a.parameters():
            p.normal_()
    psi = a.weights()
    for k in range(L):
        b = torch.softmax(a.beta[k], 0)
        for i in range(E):
            for j in range(O):
                want = torch.sigmoid(a.alpha[i, j]) * b[i] * torch.sigmoid(a.gamma[k, j])
                assert abs(psi[k, i, j] - want) < 1e-6
        # the connection factor, which weights the channels that bypass the ops under partial channels
        torch.testing.assert_close(a.edge_weights()[k], b)


def test_edge_weights_are_the_edge_factor_or_none():
    torch.manual_seed(2)
    for name in ("softmax", "sigmoid", "global"):
        assert build(name).edge_weights() is None
    a = build("pc")
    with torch.no_grad():
        a.beta_normal.normal_()
        a.beta_reduce.normal_()
    edge = a.edge_weights()
    assert edge.shape == (L, E)
    for k in range(L):
        beta = a.beta_reduce if k in a.reductions else a.beta_normal
        start = 0
        for i in range(N):   # softmax over node i's incoming edges
            torch.testing.assert_close(edge[k, start:start + i + 2], torch.softmax(beta[start:start + i + 2], 0))
            start += i + 2
    # psi = edge factor * softmax over ops (PC-DARTS)
    alpha = torch.stack([torch.softmax(a.alpha_reduce if k in a.reductions else a.alpha_normal, -1)
                         for k in range(L)])
    torch.testing.assert_close(a.weights(), edge.unsqueeze(-1) * alpha)


def test_edge_normalisation_sums_to_one_per_node():
    beta = torch.randn(E)
    w = node_softmax(beta, N)
    start = 0
    for i in range(N):
        assert abs(w[start:start + i + 2].sum() - 1) < 1e-6
        start += i + 2
    a = build("pc")
    with torch.no_grad():
        a.beta_normal.normal_()
    psi = a.weights()[0]  # normal cell: per node, total weight over edges and ops is 1
    start = 0
    for i in range(N):
        assert abs(psi[start:start + i + 2].sum() - 1) < 1e-5
        start += i + 2


def test_zero_one_loss_minimal_at_zero_and_one():
    assert zero_one_loss(torch.tensor([0.0, 1.0])) == pytest.approx(-0.25)
    assert zero_one_loss(torch.tensor([0.5])) == pytest.approx(0.0)
    p = torch.linspace(0, 1, 101)
    values = torch.stack([zero_one_loss(v.view(1)) for v in p])
    assert values.argmin() in (0, 100) and values.argmax() == 50
    a = build("sigmoid", zero_one_weight=10.0)
    want = 10 * -((torch.sigmoid(torch.cat([a.alpha_normal, a.alpha_reduce])) - 0.5) ** 2).mean()
    torch.testing.assert_close(a.regularizer(), want)


def test_dnas_zero_one_loss_covers_alpha_and_gamma_not_beta():
    torch.manual_seed(3)
    a = build("dnas", zero_one_weight=10.0)
    with torch.no_grad():
        for p in a.parameters():
            p.normal_()
    p = torch.sigmoid(torch.cat([a.alpha.flatten(), a.gamma.flatten()]))
    torch.testing.assert_close(a.regularizer(), 10 * -((p - 0.5) ** 2).mean())
    (beta_grad,) = torch.autograd.grad(a.regularizer(), [a.beta], allow_unused=True)
    assert beta_grad is None


def test_fair_darts_genotype_uses_the_configured_threshold():
    """Per node the two strongest inputs, kept when sigmoid(alpha) >= threshold (FairDARTS)."""
    a = build("sigmoid", threshold=0.6)
    with torch.no_grad():
        a.alpha_normal.fill_(-5.0)                       # sigmoid ~ 0.007: nothing passes
        a.alpha_normal[0, PRIMITIVES.index("sep_conv_3x3")] = 1.0   # node 0, input 0: 0.73
        a.alpha_normal[1, PRIMITIVES.index("skip_connect")] = 0.0   # node 0, input 1: 0.5, below 0.6
    normal = a.genotype().normal
    assert normal[:2] == (("sep_conv_3x3", 0), ("none", 1))
    low = build("sigmoid", threshold=0.4)
    low.load_state_dict(a.state_dict())
    assert low.genotype().normal[:2] == (("sep_conv_3x3", 0), ("skip_connect", 1))


def test_pc_darts_genotype_ranks_inputs_by_beta_times_alpha():
    """PC-DARTS _parse: the edge weights multiplied by the op softmax before the top-2 choice."""
    a = build("pc")
    with torch.no_grad():
        a.alpha_normal.zero_()
        a.alpha_normal[:, PRIMITIVES.index("sep_conv_3x3")] = 3.0   # every edge: sep_conv_3x3 strongest
        a.alpha_normal[2, PRIMITIVES.index("dil_conv_5x5")] = 6.0   # node 1's edge from input 0: 0.94 vs 0.74
        a.beta_normal.zero_()
        a.beta_normal[3] = 2.0   # node 1 (edges 2, 3, 4): its edge from input 1 gets most of the beta
        a.beta_normal[4] = 1.0   # and its edge from node 0 more than input 0's
    genes = a.genotype().normal
    # alpha alone would pick input 0 (dil_conv_5x5, the largest softmax); times beta, its 0.94 * 0.09
    # loses to 0.74 * 0.67 (input 1) and 0.74 * 0.24 (node 0)
    assert genes[2:4] == (("sep_conv_3x3", 1), ("sep_conv_3x3", 2))
    alone = top2_cell(torch.softmax(a.alpha_normal, -1).detach(), PRIMITIVES, N)
    assert alone.genes[2] == ("dil_conv_5x5", 0)


def test_global_discretisation_differs_per_layer():
    a = build("global")
    with torch.no_grad():
        a.alpha.zero_()
        for k in range(L):  # layer k prefers op 1 + k % 7 on the first edges of every node
            a.alpha[k, :, 1 + k % (O - 1)] = 5.0
    g = a.genotype()
    assert isinstance(g, CellwiseGenotype)
    ops = [c.genes[0][0] for c in g.cells_]
    assert ops == [PRIMITIVES[1 + k % (O - 1)] for k in range(L)]
    assert [c.reduction for c in g.cells_] == [k in RED for k in range(L)]


def test_dnas_discretises_per_layer_by_psi():
    a = build("dnas")
    with torch.no_grad():
        a.gamma.zero_()
        a.gamma[:4, PRIMITIVES.index("sep_conv_3x3")] = 6.0
        a.gamma[4:, PRIMITIVES.index("dil_conv_5x5")] = 6.0
    g = a.genotype()
    assert {op for op, _ in g.cells_[0].genes} == {"sep_conv_3x3"}
    assert {op for op, _ in g.cells_[7].genes} == {"dil_conv_5x5"}


def test_shared_arch_gives_normal_reduce_genotype():
    """The normal cell from alpha_normal, the reduction cell from alpha_reduce: each the top-2 of its own
    softmax (a swap of the two, or one read twice, is caught by the different ops they prefer)."""
    a = build("softmax")
    with torch.no_grad():
        a.alpha_normal.normal_(generator=torch.Generator().manual_seed(1))
        a.alpha_reduce.normal_(generator=torch.Generator().manual_seed(2))
        a.alpha_normal[:, PRIMITIVES.index("sep_conv_3x3")] += 5
        a.alpha_reduce[:, PRIMITIVES.index("max_pool_3x3")] += 5
    g = a.genotype()
    assert isinstance(g, Genotype)
    assert g.normal == top2_cell(torch.softmax(a.alpha_normal, -1), PRIMITIVES, N, False).genes
    assert g.reduce == top2_cell(torch.softmax(a.alpha_reduce, -1), PRIMITIVES, N, True).genes
    assert {op for op, _ in g.normal} == {"sep_conv_3x3"} and {op for op, _ in g.reduce} == {"max_pool_3x3"}


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_edge_factor_flag_says_whether_there_are_edge_weights(name):
    """report.py draws the per-edge heatmap by the flag; the supernet uses edge_weights()."""
    a = ARCHS[name](4, 2, ("none", "skip_connect", "sep_conv_3x3"), [1, 3])
    assert a.edge_factor == (a.edge_weights() is not None)


@pytest.mark.parametrize("name", ["softmax", "dnas"])
def test_an_archs_record_is_what_a_search_saves_and_the_figures_draw(tmp_path, name):
    """A loop of one's own draws the heatmaps from a live Arch (`record`) as from a search's alphas.pt."""
    from diffnas import search, search_config
    from diffnas.plots import evolution_figure, heatmap_figure, load_alphas
    from diffnas.supernet import Supernet

    cfg = search_config("darts-1st", arch=name, dataset="synthetic", layers=3, channels=4, nodes=2, batch_size=8,
                        epochs=1, max_steps=1, plots=False, run_dir=str(tmp_path / "s"))
    saved = load_alphas(search(cfg).run_dir / "alphas.pt")
    net = Supernet(4, 10, 3, 2, cfg.ops, fused=False)
    arch = arch_lib.build(name, 3, 2, cfg.ops, net.reductions)
    record = arch.record()
    assert {k: v for k, v in record.items() if k not in ("history", "when")} == \
        {k: v for k, v in saved.items() if k != "history"}
    torch.testing.assert_close(record["history"][0], arch.weights().detach())
    assert record["history"].shape[1:] == saved["history"].shape[1:]
    fig = heatmap_figure(record)
    assert len([ax for ax in fig.axes if ax.images]) == (2 if name == "softmax" else 3)
    assert "(now)" in fig._suptitle.get_text()   # not "(start)": psi as it is, whatever steps it took
    assert "(after epoch 1)" in heatmap_figure(saved)._suptitle.get_text()
    evolution_figure(record, 0)
