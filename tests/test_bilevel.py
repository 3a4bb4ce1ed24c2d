import pytest
import torch
import torch.nn.functional as F

from diffnas import bilevel, distributed
from diffnas.config import search_config
from diffnas.search import build
from diffnas.errors import NumericalError
from diffnas.step import StepContext, arch_gradient, search_step


def tiny(order="second", hessian="fd", arch="softmax", partial=1, dtype=torch.float64, skip_dropout=0.0):
    torch.manual_seed(0)
    cfg = search_config("darts", layers=3, channels=4, nodes=2, arch=arch, partial_channels=partial,
                        order=order, hessian=hessian, skip_dropout=skip_dropout)
    net, a = build(cfg, 3, 5)
    net.to(dtype)
    a.to(dtype)
    with torch.no_grad():
        for p in a.parameters():
            p.normal_()
    w_opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(a.parameters(), lr=0.01)
    ctx = StepContext(net, net, a, w_opt, a_opt, order, hessian, momentum=0.9, weight_decay=3e-4)
    g = torch.Generator().manual_seed(1)
    data = [torch.randn(6, 3, 8, 8, generator=g, dtype=dtype), torch.randint(0, 5, (6,), generator=g),
            torch.randn(6, 3, 8, 8, generator=g, dtype=dtype), torch.randint(0, 5, (6,), generator=g)]
    return ctx, data


def test_finite_difference_matches_exact_on_small_supernet():
    # float64 and a small step: tiny supernets (dead channels under BN) are far from quadratic at
    # the original's 0.01, so the limit is what is checked here
    ctx, (xt, yt, xv, yv) = tiny()
    ctx.fd_eps = 1e-5
    # a momentum buffer, as after some weight steps
    F.cross_entropy(ctx.model(xt, ctx.arch.weights().detach()), yt).backward()
    ctx.w_opt.step()
    g_fd = arch_gradient(ctx, xt, yt, xv, yv, xi=0.05)
    ctx.hessian = "exact"
    g_ex = arch_gradient(ctx, xt, yt, xv, yv, xi=0.05)
    ctx.order = "first"
    g_first = arch_gradient(ctx, xt, yt, xv, yv, xi=0.05)
    cat = lambda d: torch.cat([t.flatten() for t in d.values()])
    err = (cat(g_fd) - cat(g_ex)).norm()
    assert err < 1e-4 * cat(g_ex).norm()
    # the second-order term is not negligible here, so the check has teeth
    assert (cat(g_ex) - cat(g_first)).norm() > 100 * err


def test_finite_differences_with_skip_dropout_difference_one_mask():
    """With --skip-dropout the two losses of the finite difference drew two dropout masks, and the masks'
    difference divided by 2r swamped the Hessian-vector product (a review measured 5x the exact
    hypergradient's size, seed to seed). They now draw the mask of the unrolled step's L_train, as the
    exact product differentiates that one evaluation; the random state after the step is the same."""
    def hypergradient(hessian, seed):
        ctx, (xt, yt, xv, yv) = tiny(hessian=hessian, skip_dropout=0.5)
        ctx.fd_eps = 1e-5
        torch.manual_seed(seed)
        g = arch_gradient(ctx, xt, yt, xv, yv, xi=0.05)
        return torch.cat([t.flatten() for t in g.values()]), torch.get_rng_state()

    for seed in (1, 2):
        (fd, after_fd), (exact, after_exact) = hypergradient("fd", seed), hypergradient("exact", seed)
        assert (fd - exact).norm() < 1e-4 * exact.norm()
        assert torch.equal(after_fd, after_exact)
    # the masks matter: another seed's exact hypergradient is far from this one's
    assert (hypergradient("exact", 1)[0] - hypergradient("exact", 2)[0]).norm() > 1e-2 * exact.norm()


def test_the_random_state_replayed_on_cuda_is_the_devices_too(monkeypatch):
    """CI has no GPU: the CUDA generator's state is read and put back for the loss's device (fakes)."""
    seen = []
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device: seen.append(("get", device)) or torch.tensor([7]))
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: seen.append(("set", int(state), device)))
    device = torch.device("cuda", 1)
    state = bilevel.rng_state(device)
    assert int(state[1]) == 7 and bilevel.rng_state(torch.device("cpu"))[1] is None
    with bilevel.replayed((state[0], torch.tensor([3])), device):
        assert seen[-1] == ("set", 3, device)
    assert seen == [("get", device), ("get", device), ("set", 3, device), ("set", 7, device)]
    # MPS: its one generator, read and put back the same way
    seen.clear()
    monkeypatch.setattr(torch.mps, "get_rng_state", lambda: seen.append("get") or torch.tensor([5]))
    monkeypatch.setattr(torch.mps, "set_rng_state", lambda state: seen.append(("set", int(state))))
    mps = torch.device("mps")
    with bilevel.replayed((torch.get_rng_state(), torch.tensor([4])), mps):
        assert int(bilevel.rng_state(mps)[1]) == 5
    assert seen == ["get", ("set", 4), "get", ("set", 5)]
    # XPU (Intel GPUs): its generator per device, as CUDA's
    seen.clear()
    import types

    monkeypatch.setattr(torch, "xpu", types.SimpleNamespace(   # torch 2.2 has no torch.xpu
        get_rng_state=lambda device: seen.append(("get", device)) or torch.tensor([2]),
        set_rng_state=lambda state, device: seen.append(("set", int(state), device))), raising=False)
    xpu = torch.device("xpu", 0)
    with bilevel.replayed((torch.get_rng_state(), torch.tensor([6])), xpu):
        assert int(bilevel.rng_state(xpu)[1]) == 2
    assert seen == [("get", xpu), ("set", 6, xpu), ("get", xpu), ("set", 2, xpu)]


def test_exact_equals_autograd_through_the_unrolled_step():
    """exact second order = d/dalpha L_val(w - xi grad_w L_train(w, alpha), alpha), by plain autograd."""
    ctx, (xt, yt, xv, yv) = tiny(hessian="exact")
    xi = 0.1
    ctx.weight_decay = 0.0
    g = arch_gradient(ctx, xt, yt, xv, yv, xi)
    w = dict(ctx.supernet.named_parameters())
    alpha = dict(ctx.arch.named_parameters())
    from torch.func import functional_call

    lt = F.cross_entropy(functional_call(ctx.supernet, w, (xt, *ctx.arch())), yt)
    gw = torch.autograd.grad(lt, list(w.values()), create_graph=True)
    w2 = {n: p - xi * gi for (n, p), gi in zip(w.items(), gw)}
    lv = F.cross_entropy(functional_call(ctx.supernet, w2, (xv, *ctx.arch())), yv)
    ref = torch.autograd.grad(lv, list(alpha.values()))
    for (n, _), r in zip(alpha.items(), ref):
        torch.testing.assert_close(g[n], r, rtol=1e-6, atol=1e-9)


def test_the_unrolled_step_takes_the_weight_optimisers_momentum_and_decay():
    """A StepContext given no momentum/weight_decay unrolled with 0.9 and 3e-4 whatever w_opt did; it
    now reads w_opt's, checked against autograd through w' = w - xi (m buf + grad + wd w)."""
    ctx, (xt, yt, xv, yv) = tiny(hessian="exact")
    w_opt = torch.optim.SGD(ctx.supernet.parameters(), lr=0.1, momentum=0.5, weight_decay=2e-3)
    ctx = StepContext(ctx.supernet, ctx.model, ctx.arch, w_opt, ctx.a_opt, "second", "exact")
    assert (ctx.momentum, ctx.weight_decay) == (0.5, 2e-3)
    F.cross_entropy(ctx.model(xt, ctx.arch.weights().detach()), yt).backward()
    w_opt.step()   # a momentum buffer
    xi = 0.1
    g = arch_gradient(ctx, xt, yt, xv, yv, xi)
    from torch.func import functional_call

    w = dict(ctx.supernet.named_parameters())
    alpha = dict(ctx.arch.named_parameters())
    lt = F.cross_entropy(functional_call(ctx.supernet, w, (xt, *ctx.arch())), yt)
    gw = torch.autograd.grad(lt, list(w.values()), create_graph=True)
    w2 = {n: p - xi * (0.5 * w_opt.state[p]["momentum_buffer"] + gi + 2e-3 * p) for (n, p), gi in zip(w.items(), gw)}
    lv = F.cross_entropy(functional_call(ctx.supernet, w2, (xv, *ctx.arch())), yv)
    ref = torch.autograd.grad(lv, list(alpha.values()))
    for (n, _), r in zip(alpha.items(), ref):
        torch.testing.assert_close(g[n], r, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("arch", ["softmax", "pc", "dnas"])
def test_second_order_at_xi_zero_equals_first_order(arch):
    ctx, (xt, yt, xv, yv) = tiny(arch=arch, partial=2 if arch != "softmax" else 1)
    call = torch.func.functional_call

    def loss_on(x, y):   # CE of the supernet at (w, alpha), psi and the edge weights from alpha
        return lambda w, a: F.cross_entropy(call(ctx.supernet, w, (x, *call(ctx.arch, a, ()))), y)

    second = bilevel.second_order(loss_on(xt, yt), loss_on(xv, yv), dict(ctx.supernet.named_parameters()),
                                  dict(ctx.arch.named_parameters()), 0.0)
    ctx.order = "first"
    first = arch_gradient(ctx, xt, yt, xv, yv, 0.0)
    for n in first:
        torch.testing.assert_close(second[n], first[n])


def test_unrolled_step_uses_momentum_and_weight_decay():
    w = {"p": torch.tensor([1.0, 2.0])}
    g = {"p": torch.tensor([0.5, -1.0])}
    buf = {"p": torch.tensor([2.0, 0.0])}
    out = bilevel.unrolled(w, g, 0.1, buf, momentum=0.9, weight_decay=0.01)
    torch.testing.assert_close(out["p"], torch.tensor([1 - 0.1 * (0.5 + 0.01 + 1.8), 2 - 0.1 * (-1.0 + 0.02)]))


def test_shared_names_are_refused():
    mk = lambda v: torch.tensor(v, dtype=torch.float64, requires_grad=True)
    tl = lambda w, a: w["x"] ** 2 - 2 * a["x"] * w["x"] + a["x"] ** 2
    vl = lambda w, a: a["x"] * w["x"] - 2 * a["x"] + 1
    with pytest.raises(ValueError, match="share names"):
        bilevel.second_order(tl, vl, {"x": mk(-1.0)}, {"x": mk(3.0)}, 0.5)


@pytest.mark.parametrize("bn_groups", [1, 2])   # 2: GroupedForward puts new buffer tensors in place
@pytest.mark.parametrize("order, hessian", [("second", "exact"), ("first", "fd")])
def test_the_validation_batch_moves_bn_statistics_only_where_darts_does(order, hessian, bn_groups):
    """DARTS evaluates L_val(w') in a copy of the network whose BN running statistics are thrown away
    (architect.py `_construct_model_from_theta`); first order evaluates L_val(w) in the network
    itself. So after a second-order architecture gradient the statistics do not depend on the
    validation batch, and after a first-order one they do. (Exact Hessian-vector products: the
    finite differences' forwards at w +- r v move the network's statistics, as DARTS's do, and v
    depends on the validation batch.)"""
    stats = []
    for shift in (0.0, 50.0):
        ctx, (xt, yt, xv, yv) = tiny(order=order, hessian=hessian)
        distributed.prepare(ctx.supernet, bn_groups)
        arch_gradient(ctx, xt, yt, xv + shift, yv, xi=0.05)
        stats.append(torch.cat([b.flatten().double() for n, b in ctx.supernet.named_buffers() if "running" in n]))
    before = tiny(order=order, hessian=hessian)[0]
    start = torch.cat([b.flatten().double() for n, b in before.supernet.named_buffers() if "running" in n])
    assert not torch.equal(stats[0], start)   # the training-batch forwards at w did move them
    assert torch.equal(stats[0], stats[1]) is (order == "second")


@pytest.mark.parametrize("order", ["one-level", "first"])
def test_a_non_finite_architecture_gradient_is_caught_in_its_own_step(order, monkeypatch):
    """A regulariser whose alpha gradient is NaN (the loss and the weights' gradients stay finite): the
    bilevel step raised in that step, the one-level step did not check alpha at all."""
    ctx, (xt, yt, xv, yv) = tiny(order=order)
    ctx.check = True
    alpha = next(ctx.arch.parameters())
    monkeypatch.setattr(ctx.arch, "regularizer", lambda: alpha.sum() * float("nan"))
    with pytest.raises(NumericalError, match="^non-finite architecture (gradient|parameter) step 1$"):
        search_step(ctx, xt, yt, xv, yv, 0.0, True, "step 1")


def test_finite_difference_step_is_eps_over_the_norm_of_v():
    """architect.py's R = r / ||v||: w+- = w +- R v lie eps from w whatever ||v|| is; a cubic loss's
    product then matches its closed form to O(R^2). (A step of eps itself passed every quadratic test.)"""
    w = {"w": torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)}
    a = {"a": torch.tensor([0.5, -1.5], dtype=torch.float64, requires_grad=True)}
    v = {"w": torch.tensor([30.0, 40.0], dtype=torch.float64)}   # ||v|| = 50
    seen = []

    def cubic(params, arch):   # L = sum(a * w^3): d/da = w^3, its derivative along v in w: 3 w^2 v
        seen.append(params["w"].detach().clone())
        return (arch["a"] * params["w"] ** 3).sum()

    hv = bilevel.hessian_vector(cubic, w, a, v, method="fd", eps=0.01)
    assert [float((p - w["w"].detach()).norm()) for p in seen] == pytest.approx([0.01, 0.01], rel=1e-9)
    closed = 3 * w["w"].detach() ** 2 * v["w"]
    torch.testing.assert_close(hv["a"], closed, rtol=1e-4, atol=0)


def test_the_zero_one_loss_enters_the_architecture_gradient_once():
    """FairDARTS (sigmoid, first order): grad_alpha of L_val + w * zero_one_loss(sigmoid(alpha)), the
    loss written out here and differentiated by autograd."""
    ctx, (xt, yt, xv, yv) = tiny(order="first", arch="sigmoid")
    ctx.arch.zero_one_weight = 10.0
    g = arch_gradient(ctx, xt, yt, xv, yv, xi=0.0)
    alphas = list(ctx.arch.parameters())
    psi, edge = ctx.arch()
    probabilities = torch.cat([torch.sigmoid(p).flatten() for p in alphas])
    total = F.cross_entropy(ctx.supernet(xv, psi, edge), yv) - 10.0 * ((probabilities - 0.5) ** 2).mean()
    want = torch.autograd.grad(total, alphas)
    for (name, _), expected in zip(ctx.arch.named_parameters(), want):
        torch.testing.assert_close(g[name], expected, rtol=1e-10, atol=1e-12)


def test_the_search_weight_step_clips_the_gradient_norm():
    """w <- w - lr * g * min(1, clip / ||g||) (DARTS's --grad_clip 5 in train_search.py), with g the
    training loss's gradient at fixed alpha, computed here by plain autograd."""
    ctx, (xt, yt, xv, yv) = tiny(order="first")
    ctx.w_opt = torch.optim.SGD(ctx.supernet.parameters(), lr=0.1)   # no momentum or decay: the step is lr * g
    ctx.grad_clip = 1e-3
    before = [p.detach().clone() for p in ctx.supernet.parameters()]
    psi, edge = ctx.arch()
    grads = torch.autograd.grad(F.cross_entropy(ctx.supernet(xt, psi.detach(), edge), yt),
                                list(ctx.supernet.parameters()), allow_unused=True)
    norm = torch.sqrt(sum((gr ** 2).sum() for gr in grads if gr is not None))
    assert norm > 10 * ctx.grad_clip   # so the clip binds
    search_step(ctx, xt, yt, xv, yv, xi=0.0, update_arch=False, where="test")
    for p, old, gr in zip(ctx.supernet.parameters(), before, grads):
        expected = old if gr is None else old - 0.1 * gr * (ctx.grad_clip / norm)
        torch.testing.assert_close(p.detach(), expected, rtol=1e-6, atol=1e-12)


def test_a_loss_that_ignores_the_parameters_it_is_given_is_refused_not_taken_for_first_order():
    """A closure calling the modules with their own parameters gave zeros for the unrolled weights'
    terms: second order (fd) silently equalled first order, exact failed in torch's words."""
    from torch.func import functional_call

    from diffnas.errors import ConfigError

    ctx, (xt, yt, xv, yv) = tiny()
    w, alpha = dict(ctx.supernet.named_parameters()), dict(ctx.arch.named_parameters())

    def own(x, y):   # the modules' own parameters: w' never enters
        return lambda w_, a_: F.cross_entropy(ctx.supernet(x, *ctx.arch()), y)

    def given(x, y):
        def loss(w_, a_):
            return F.cross_entropy(functional_call(ctx.supernet, w_, (x, *functional_call(ctx.arch, a_, ()))), y)

        return loss

    for method in ("fd", "exact"):
        with pytest.raises(ConfigError, match=r"^loss: reaches none of the parameters it is differentiated by "
                                              r"\(stem\.0\.weight, .*functional_call"):
            bilevel.second_order(own(xt, yt), own(xv, yv), w, alpha, 0.1, method)
        bilevel.second_order(given(xt, yt), given(xv, yv), w, alpha, 0.1, method)   # the dicts it is given: runs
    other = tiny()[0].arch   # another arch's parameters: the loss reaches none of them
    with pytest.raises(ConfigError, match="^loss: reaches none of the parameters"):
        bilevel.first_order(own(xv, yv), w, dict(other.named_parameters()))


def test_a_step_context_refuses_what_would_step_silently_wrong():
    from diffnas import arch as arch_lib
    from diffnas.errors import ConfigError

    ctx, _ = tiny()
    net, a = ctx.supernet, ctx.arch
    sgd, adam = torch.optim.SGD(net.parameters(), lr=0.1), torch.optim.Adam(a.parameters())

    def context(*args, **kw):
        return StepContext(*args, **kw)

    with pytest.raises(ConfigError, match="^order: 'secnd' is not one of first, second, one-level"):
        context(net, net, a, sgd, adam, "secnd")
    with pytest.raises(ConfigError, match="^hessian: 'fdd' is not one of fd, exact"):
        context(net, net, a, sgd, adam, "second", "fdd")
    # the optimisers swapped: nothing moved; alpha in both: one-level stepped it twice
    with pytest.raises(ConfigError, match=r"^w_opt: holds architecture parameters; it must step the supernet's "
                                          r"weights alone \(w_opt: supernet.parameters\(\), "
                                          r"a_opt: arch.parameters\(\)\)$"):
        context(net, net, a, torch.optim.SGD(a.parameters(), lr=0.1), torch.optim.Adam(net.parameters()), "first")
    both = torch.optim.SGD([*net.parameters(), *a.parameters()], lr=0.1)
    with pytest.raises(ConfigError, match="^w_opt: also holds architecture parameters"):
        context(net, net, a, both, adam, "one-level")
    # the same shapes, another space: the ops in another order, or reductions elsewhere
    reordered = arch_lib.build("softmax", net.layers, net.nodes, net.ops[::-1], net.reductions)
    with pytest.raises(ConfigError, match=r"^arch: its ops \('dil_conv_5x5', .* are not the supernet's \('none', "):
        context(net, net, reordered, sgd, torch.optim.Adam(reordered.parameters()), "first")
    elsewhere = arch_lib.build("softmax", net.layers, net.nodes, net.ops, [0, 2])
    with pytest.raises(ConfigError, match=r"^arch: its reductions \(0, 2\) are not the supernet's \(1, 2\)"):
        context(net, net, elsewhere, sgd, torch.optim.Adam(elsewhere.parameters()), "first")
    # second order unrolls SGD's step, read off w_opt: another optimiser's only with momentum and decay given
    with pytest.raises(ConfigError, match=r"^w_opt: second order unrolls an SGD step .* a Adam; give StepContext"):
        context(net, net, a, torch.optim.Adam(net.parameters()), adam, "second")
    context(net, net, a, torch.optim.Adam(net.parameters()), adam, "second", momentum=0.0, weight_decay=0.0)
    context(net, net, a, torch.optim.Adam(net.parameters()), adam, "first")   # nothing unrolled
    with pytest.raises(ConfigError, match="^w_opt: second order unrolls plain SGD momentum"):
        context(net, net, a, torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, nesterov=True), adam, "second")
    params = list(net.parameters())
    groups = torch.optim.SGD([{"params": params[:1], "weight_decay": 0.0}, {"params": params[1:]}], lr=0.1,
                             weight_decay=3e-4)
    with pytest.raises(ConfigError, match="^w_opt: its parameter groups differ in momentum or weight decay"):
        context(net, net, a, groups, adam, "second")


def test_one_level_steps_alpha_by_the_training_loss_and_its_regulariser_anew_each_step():
    """One-level (DARTS section 3.3): each step moves alpha by -lr * grad_alpha(L_train + w01 * zero-one
    loss) on that step's batch, computed here by autograd; the gradient of the step before is gone."""
    ctx, (xt, yt, xv, yv) = tiny(order="one-level", arch="sigmoid")
    ctx.arch.zero_one_weight = 10.0
    lr = 0.05
    ctx.a_opt = torch.optim.SGD(ctx.arch.parameters(), lr=lr)
    for x, y in ((xt, yt), (xv, yv)):   # two steps, each on its own batch
        alphas = list(ctx.arch.parameters())
        before = [p.detach().clone() for p in alphas]
        psi, edge = ctx.arch()
        probabilities = torch.cat([torch.sigmoid(p).flatten() for p in alphas])
        # the weights as the step sees them: its forward comes before its own weight update
        total = F.cross_entropy(ctx.supernet(x, psi, edge), y) - 10.0 * ((probabilities - 0.5) ** 2).mean()
        want = torch.autograd.grad(total, alphas)
        ctx.supernet.zero_grad(set_to_none=True)
        search_step(ctx, x, y, x, y, xi=0.0, update_arch=True, where="test")
        for p, old, g in zip(alphas, before, want):
            torch.testing.assert_close(p.detach(), old - lr * g, rtol=1e-9, atol=1e-12)
