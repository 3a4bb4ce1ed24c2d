"""The batched edges (diffnas.fused) and the fast path (diffnas.fastpath) compute what the plain
eager code computes: outputs, gradients, BN running statistics, search steps; bf16 keeps fp32 masters;
unsupported configurations say so once; the benchmark script runs and writes its records."""

import copy
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from diffnas import fastpath
from diffnas import fused as fused_lib
from diffnas.config import search_config
from diffnas.errors import ConfigError
from diffnas.ops import PRIMITIVES
from diffnas.search import build, search, step_context
from diffnas.step import search_step
from diffnas.supernet import MixedOp, Supernet, edge_list

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def one_thread():
    # conftest.py sets one thread for the whole run; the benchmark scripts run in-process here set
    # their own (--threads), so every test of this file puts back the one-thread setting
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pair(dtype=torch.float64, **kwargs):
    """(plain, fused) supernets with the same weights; the fused one built plain and switched."""
    torch.manual_seed(0)
    plain = Supernet(**{"channels": 4, "layers": 3, "nodes": 3, **kwargs}, fused=False).to(dtype)
    return plain, copy.deepcopy(plain).set_fused(True)


def run_twice(net, x, psi):
    """Two training forward/backward passes (running statistics move twice); returns output, psi grad."""
    psi = psi.detach().clone().requires_grad_(True)
    net.zero_grad(set_to_none=True)
    for _ in range(2):
        out = net(x, psi)
        (out.square().sum() + out.sum()).backward()
    return out.detach(), psi.grad


def assert_same_function(plain, fused, x, psi, rtol, atol):
    out_p, g_p = run_twice(plain, x, psi)
    out_f, g_f = run_twice(fused, x, psi)
    torch.testing.assert_close(out_f, out_p, rtol=rtol, atol=atol)
    torch.testing.assert_close(g_f, g_p, rtol=rtol, atol=atol * g_p.abs().max().item())
    for (name, a), b in zip(plain.named_parameters(), fused.parameters()):
        scale = a.grad.abs().max().item()
        torch.testing.assert_close(b.grad, a.grad, rtol=rtol, atol=atol * max(scale, 1e-12), msg=name)
    sd_p, sd_f = plain.state_dict(), fused.state_dict()
    assert list(sd_p) == list(sd_f)
    for k in sd_p:
        assert sd_p[k].shape == sd_f[k].shape and sd_p[k].dtype == sd_f[k].dtype, k
        torch.testing.assert_close(sd_f[k], sd_p[k], rtol=rtol, atol=atol, msg=k)
    assert any(k.endswith("running_var") and not torch.equal(sd_f[k], torch.ones_like(sd_f[k])) for k in sd_f)


@pytest.mark.parametrize("partial,pointwise", [(1, "separate"), (4, "separate"), (1, "grouped"), (1, "matmul")])
def test_fused_supernet_equals_plain_in_float64(partial, pointwise, monkeypatch):
    monkeypatch.setattr(fused_lib, "POINTWISE", pointwise)
    # 3 layers: cell 0 normal, cells 1 and 2 reduction (stride-2 edges, FactorizedReduce skip)
    plain, fused = pair(torch.float64, channels=8 if partial > 1 else 4, partial=partial)
    assert any(isinstance(m, MixedOp) and m.plan is not None and m.stride == 2 for m in fused.modules())
    x = torch.randn(4, 3, 10, 10, dtype=torch.float64)
    psi = torch.softmax(torch.randn(3, len(edge_list(3)), len(PRIMITIVES), dtype=torch.float64), -1)
    assert_same_function(plain, fused, x, psi, rtol=1e-9, atol=1e-11)


def test_fused_supernet_equals_plain_in_float32_and_eval_mode():
    plain, fused = pair(torch.float32, nodes=2)
    x = torch.randn(4, 3, 9, 9)   # odd sizes: padding of the strided ops and FactorizedReduce
    psi = torch.rand(3, len(edge_list(2)), len(PRIMITIVES))   # sigmoid-like weights, not summing to 1
    assert_same_function(plain, fused, x, psi, rtol=1e-4, atol=1e-5)
    plain.eval(), fused.eval()
    with torch.no_grad():
        torch.testing.assert_close(fused(x, psi), plain(x, psi), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("ops", [("none", "max_pool_3x3", "skip_connect", "sep_conv_3x3"),
                                 ("avg_pool_3x3", "sep_conv_7x7", "dil_conv_3x3", "dil_conv_5x5"),
                                 ("none", "skip_connect")])
def test_other_op_sets(ops):
    plain, fused = pair(torch.float64, nodes=2, ops=ops, skip_dropout=0.0)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    psi = torch.rand(3, len(edge_list(2)), len(ops), dtype=torch.float64)
    assert_same_function(plain, fused, x, psi, rtol=1e-9, atol=1e-11)


def test_running_statistics_stay_in_the_op_modules():
    """The BN modules hold views of one flat buffer per stage: dtype moves, state_dict loading and
    assign-loading keep every op's statistics its own."""
    plain, fused = pair(torch.float32)
    fused = fused.double()   # rebuilds the flat buffers
    plain = plain.double()
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    psi = torch.softmax(torch.randn(3, len(edge_list(3)), len(PRIMITIVES), dtype=torch.float64), -1)
    assert_same_function(plain, fused, x, psi, rtol=1e-9, atol=1e-11)
    # a checkpoint of the fused net loads into a plain one: the same function
    buf = io.BytesIO()
    torch.save(fused.state_dict(), buf)
    buf.seek(0)
    other = Supernet(4, layers=3, nodes=3, fused=False).double()
    other.load_state_dict(torch.load(buf, weights_only=True))
    other.eval(), plain.eval()
    with torch.no_grad():
        torch.testing.assert_close(other(x, psi), plain(x, psi), rtol=1e-9, atol=1e-11)
    plain.train()
    # loading by assignment replaces the modules' buffers: the fused edges still update them
    fused.load_state_dict(copy.deepcopy(plain.state_dict()), assign=True)
    assert_same_function(plain, fused, x, psi, rtol=1e-9, atol=1e-11)


def test_weight_count_and_keys_unchanged():
    plain, fused = Supernet(8, layers=5, nodes=4, fused=False), Supernet(8, layers=5, nodes=4)
    assert sum(p.numel() for p in fused.parameters()) == sum(p.numel() for p in plain.parameters())
    assert {k: v.shape for k, v in fused.state_dict().items()} == {k: v.shape for k, v in plain.state_dict().items()}


# --- search steps -----------------------------------------------------------------------------

TINY = dict(dataset="synthetic", layers=3, channels=4, nodes=2, batch_size=8, epochs=1, plots=False)


def make_ctx(cfg, fused, precision="fp32"):
    torch.manual_seed(0)
    supernet, arch = build(cfg, 3, 10)
    supernet.set_fused(fused)
    return step_context(cfg, supernet, arch, torch.device("cpu"), precision=precision)


def batches(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 3, 8, 8, generator=g), torch.randint(0, 10, (8,), generator=g),
             torch.randn(8, 3, 8, 8, generator=g), torch.randint(0, 10, (8,), generator=g)) for _ in range(n)]


@pytest.mark.parametrize("preset,extra", [("darts-1st", {}), ("darts", {}), ("darts", {"hessian": "exact"}),
                                          ("dnas", {}), ("darts", {"order": "one-level"})])
def test_fast_path_and_eager_path_agree_after_search_steps(preset, extra, capsys):
    """On a CPU the fast path is the batched (fused) edges alone: compiled steps run on CUDA only
    (step_function returns the eager step here), so this compares fused with plain edges."""
    cfg = search_config(preset, **{**TINY, "channels": 8 if preset == "dnas" else 4}, **extra)
    eager = make_ctx(cfg, fused=False)
    fast = make_ctx(cfg, fused=True)
    step = fastpath.step_function(search_step, cfg, torch.device("cpu"))
    assert step is search_step and "fast path" not in capsys.readouterr().err   # the CPU default: no notice
    for ctx, fn in ((eager, search_step), (fast, step)):
        torch.manual_seed(1)   # the same dropout masks (DNAS: dropout after skip_connect)
        for k, (xt, yt, xv, yv) in enumerate(batches(2)):
            fn(ctx, xt, yt, xv, yv, 0.025, True, f"step {k}")
    for a, b in zip(eager.arch.parameters(), fast.arch.parameters()):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)
    for (name, a), b in zip(eager.supernet.state_dict().items(), fast.supernet.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=name)


def test_bf16_keeps_alpha_and_master_weights_fp32():
    cfg = search_config("darts-1st", **TINY, precision="bf16")
    ctx = make_ctx(cfg, fused=True, precision="bf16")
    xt, yt, xv, yv = batches(1)[0]
    with ctx.autocast():
        assert ctx.supernet(xt, ctx.arch.weights()).dtype == torch.bfloat16   # autocast is in effect
    before = {n: p.detach().clone() for n, p in ctx.arch.named_parameters()}
    for k in range(2):
        loss, _ = search_step(ctx, xt, yt, xv, yv, 0.025, True, f"step {k}")
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
    for p in [*ctx.arch.parameters(), *ctx.supernet.parameters()]:
        assert p.dtype == torch.float32 and (p.grad is None or p.grad.dtype == torch.float32)
    for opt in (ctx.w_opt, ctx.a_opt):
        assert all(t.dtype == torch.float32 for s in opt.state.values() for t in s.values()
                   if torch.is_tensor(t) and t.is_floating_point() and t.dim() > 0)
    assert any(not torch.equal(before[n], p) for n, p in ctx.arch.named_parameters())
    assert all(b.dtype == torch.float32 for n, b in ctx.supernet.named_buffers() if "running" in n)


# --- fallback notices and the compiled step's safety net ---------------------------------------

def test_cpu_runs_print_no_fast_path_notice(tmp_path, capsys):
    """compile defaults to on and means "on CUDA": a CPU run falls back from nothing, says nothing."""
    search(search_config("darts-1st", **{**TINY, "epochs": 2}, max_steps=3, run_dir=str(tmp_path / "r")))
    assert "fast path" not in capsys.readouterr().err
    search(search_config("darts-1st", **TINY, max_steps=1, compile=False, run_dir=str(tmp_path / "s")))
    assert "fast path" not in capsys.readouterr().err


def test_cuda_fallback_notice_appears_exactly_once(monkeypatch, capsys):
    """A CUDA configuration the compiled step cannot run says so, once, on one line (no GPU needed:
    the step is chosen before anything runs on the device)."""
    cuda = torch.device("cuda")
    for cfg, why in ((search_config("darts-1st", **TINY, deterministic=True), "deterministic"),
                     (search_config("darts", **TINY, hessian="exact"), "double backward")):
        assert fastpath.step_function(search_step, cfg, cuda) is search_step
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("diffnas: fast path: ") and why in err[0]
    monkeypatch.setattr(fastpath.distributed, "is_distributed", lambda: True)
    assert fastpath.step_function(search_step, search_config("darts-1st", **TINY), cuda) is search_step
    assert "torch.distributed" in capsys.readouterr().err
    # --no-compile on CUDA: the plain step, silently
    assert fastpath.step_function(search_step, search_config("darts-1st", **TINY, compile=False), cuda) is search_step
    assert capsys.readouterr().err == ""


def test_second_order_compiles_without_cuda_graphs(capsys, monkeypatch):
    monkeypatch.setattr(fastpath, "_torch_version", lambda: (2, 5))   # older torch refuses second order before
    cuda = torch.device("cuda")
    step = fastpath.step_function(search_step, search_config("darts", **TINY), cuda, mode="reduce-overhead")
    err = capsys.readouterr().err.strip().splitlines()
    assert step.mode == "default" and len(err) == 1 and "recorded again at every second-order step" in err[0]
    step = fastpath.step_function(search_step, search_config("darts-1st", **TINY), cuda, mode="reduce-overhead")
    assert step.mode == "reduce-overhead" and capsys.readouterr().err == ""
    step = fastpath.step_function(search_step, search_config("darts", **TINY), cuda, mode="max-autotune")
    assert step.mode == "max-autotune-no-cudagraphs"


def test_cudnn_times_its_algorithms_unless_deterministic():
    from diffnas.process_state import seed_everything
    before = torch.backends.cudnn.benchmark
    try:
        seed_everything(0)
        assert torch.backends.cudnn.benchmark is True    # DARTS's scripts: cudnn.benchmark = True
        seed_everything(0, deterministic=True)
        assert torch.backends.cudnn.benchmark is False
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.benchmark = before


@pytest.mark.parametrize("version,first,second", [((2, 2), "torch >= 2.3", "torch >= 2.3"),
                                                  ((2, 4), None, "torch >= 2.5"), ((2, 11), None, None)])
def test_older_torch_versions_run_eager_with_the_reason(monkeypatch, version, first, second):
    # measured (a review on torch 2.2.2): dynamo broke the supernet into 38 graphs, or traced it for minutes
    monkeypatch.setattr(fastpath, "_torch_version", lambda: version)
    for preset, why in (("darts-1st", first), ("darts", second)):
        got = fastpath.unsupported(search_config(preset), torch.device("cuda"))
        assert got == why if why is None else why in got


def test_unsupported_configurations_are_named(monkeypatch):
    monkeypatch.setattr(fastpath, "_torch_version", lambda: (2, 11))   # the version decides too (test above)
    cuda = torch.device("cuda")
    assert fastpath.unsupported(search_config("darts-1st"), cuda) is None
    assert "double backward" in fastpath.unsupported(search_config("darts", hessian="exact"), cuda)
    assert "deterministic" in fastpath.unsupported(search_config("darts-1st", deterministic=True), cuda)
    assert "CUDA only" in fastpath.unsupported(search_config("darts-1st"), torch.device("cpu"))
    assert "bn_groups" in fastpath.unsupported(search_config("darts-1st", bn_groups=2), cuda)


def _one_step(ctx, step):
    xt, yt, xv, yv = batches(1)[0]
    return step(ctx, xt, yt, xv, yv, 0.025, True, "step 1")


def _eager_and_compiled(monkeypatch, capsys, cfg, compiler):
    """One step of the eager path and one of CompiledStep (torch.compile replaced by `compiler`), from
    the same start; returns both contexts, the step and its stderr lines."""
    eager, fast = make_ctx(cfg, fused=True), make_ctx(cfg, fused=True)
    monkeypatch.setattr(torch, "compile", compiler)
    step = fastpath.CompiledStep(search_step)
    _one_step(eager, search_step)
    _one_step(fast, step)
    return eager, fast, step, capsys.readouterr().err.strip().splitlines()


def _skewed_statistics(fn, **kw):
    """A compiled forward right in its outputs and gradients that writes the BN running statistics
    wrong (as a traced graph did once, for buffers swapped in through functional_call)."""
    net = getattr(fn, "__self__", fn)

    def run(*args):
        out = fn(*args)
        for name, b in net.named_buffers():
            if name.endswith("running_mean"):
                b.data.add_(1.0)   # .data: BN's backward holds them
        return out
    return run


@pytest.mark.parametrize("compiler,expect", [
    (lambda fn, **kw: fn, None),                                                 # works: compiled path
    (lambda fn, **kw: (_ for _ in ()).throw(RuntimeError("no compiler\nmore")), "torch.compile failed"),
    (lambda fn, **kw: (lambda *args: fn(*args) * 1.5), "differ from eager"),  # wrong results: refused
    (_skewed_statistics, "compiled architecture-step BN statistics differ from eager"),
])
@pytest.mark.parametrize("preset", ["darts-1st", "pc-darts"])   # pc-darts: edge weights in the trial too
def test_compiled_step_checks_itself_against_eager(monkeypatch, capsys, compiler, expect, preset):
    cfg = search_config(preset, **TINY, **({"warmup_epochs": 0} if preset == "pc-darts" else {}))
    eager, fast, step, err = _eager_and_compiled(monkeypatch, capsys, cfg, compiler)
    # a line before the compile (it takes minutes on a GPU), a line with the outcome
    assert len(err) == 2 and err[0].startswith("diffnas: fast path: compiling the search step")
    if expect is None:
        assert "compiled and checked (2 graphs) in" in err[1] and step.active and fast.supernet.compiled is not None
    else:
        assert expect in err[1] and not step.active and fast.supernet.compiled is None
    # whatever happened, the trial left no trace: the step is exactly the eager one
    for a, b in zip(eager.supernet.state_dict().values(), fast.supernet.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=0, atol=0)
    for a, b in zip(eager.arch.parameters(), fast.arch.parameters()):
        torch.testing.assert_close(b, a, rtol=0, atol=0)


def _wrong_with_swapped_weights(fn, **kw):
    """A compiled body that is right with the supernet's own parameters and wrong with any others (as a
    graph compiled for the weights that functional_call swaps in could be)."""
    net = fn.__self__
    own = [id(p) for p in net.parameters()]
    return lambda *args: fn(*args) * (1.0 if [id(p) for p in net.parameters()] == own else 1.5)


@pytest.mark.parametrize("preset,active", [("darts", False), ("darts-1st", True)])
def test_second_order_trial_covers_the_unrolled_and_finite_difference_weights(monkeypatch, capsys, preset, active):
    # second order runs the body with w' (requiring grad) and w+- (not): graphs of their own, checked too
    eager, fast, step, err = _eager_and_compiled(monkeypatch, capsys, search_config(preset, **TINY),
                                                 _wrong_with_swapped_weights)
    assert step.active is active and len(err) == 2
    if not active:
        assert "compiled unrolled-step logits differ from eager" in err[1]
    else:
        assert "compiled and checked (2 graphs)" in err[1]
    for a, b in zip(eager.arch.parameters(), fast.arch.parameters()):
        torch.testing.assert_close(b, a, rtol=0, atol=0)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")   # torch.jit's, raised as inductor loads
def test_compiled_random_numbers_are_the_eager_ones():
    # inductor draws its own random numbers unless told not to: DNAS's skip dropout (and the trained
    # network's drop-path) would get other masks than eager for the same seed, and the check before the
    # first step would always refuse DNAS. Real inductor on the CPU (a few seconds for this function).
    import torch._inductor.config as inductor_config
    from diffnas.distributed import BatchDropout
    torch._dynamo.reset()
    assert inductor_config.fallback_random is False   # inductor's default, and compile_fn leaves it so
    drop = BatchDropout(0.2).train()
    x = torch.randn(16, 64)
    torch.manual_seed(5)
    eager = drop(x) * 2.0
    compiled = fastpath.compile_fn(lambda t: drop(t) * 2.0)
    torch.manual_seed(5)
    assert torch.equal(compiled(x), eager)
    assert inductor_config.fallback_random is False   # for this function only: a user's other compiles keep theirs
    torch._dynamo.reset()


def test_compile_mode_from_the_environment(monkeypatch):
    monkeypatch.setenv("DIFFNAS_COMPILE_MODE", "reduce-overhead")
    assert fastpath.compile_mode() == "reduce-overhead" and fastpath.CompiledStep(search_step).mode == "reduce-overhead"
    assert fastpath.compile_mode("default") == "default"
    monkeypatch.setenv("DIFFNAS_COMPILE_MODE", "fast")
    with pytest.raises(ConfigError, match="not one of"):   # one line from the command line, not a traceback
        fastpath.compile_fn(lambda t: t)


def _wrong_after_the_trial(fn):
    """Right for the trial's two calls (first order), wrong from then on (as a recompiled graph could be)."""
    calls = []

    def compiled(*args):
        calls.append(1)
        return fn(*args) * (1.0 if len(calls) <= 2 else 1.5)
    return compiled


def _load_benchmark(name):
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("compiler,code,says", [
    (lambda fn, **kw: fn, 0, "all within tolerance"),
    (lambda fn, **kw: (lambda *args: fn(*args) * 1.5), 1, "darts-1st: the compiled step fell back to eager"),
    (lambda fn, **kw: _wrong_after_the_trial(fn), 1, "darts-1st: compiled vs fused"),
])
def test_check_compiled_script_exit_status(monkeypatch, capsys, compiler, code, says):
    # benchmarks/check_compiled.py, the first thing a GPU session runs: fails when the compiled step fell
    # back or drifted from eager by more than the tolerance and the eager paths' own difference
    check = _load_benchmark("check_compiled")
    monkeypatch.setattr(torch, "compile", compiler)
    monkeypatch.setattr(torch._dynamo, "reset", lambda: None)
    argv = ["--device", "cpu", "--small", "--presets", "darts-1st", "--steps", "2", "--tol", "1e-3",
            "--sizes", json.dumps({"layers": 3, "channels": 4, "nodes": 2, "batch_size": 4})]
    assert check.main(argv) == code
    assert says in capsys.readouterr().out


# --- the benchmark script -----------------------------------------------------------------------

def test_bench_small_writes_records(tmp_path):
    out = tmp_path / "cpu.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--small", "--steps", "2",
                           "--warmup", "0", "--device", "cpu", "--workloads", "search-first", "train-darts-v2",
                           "--in-process", "--out", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    records = json.loads(out.read_text())
    assert [(r["workload"], r["path"]) for r in records] == [
        ("search-first", "plain"), ("search-first", "fused"), ("train-darts-v2", "plain")]
    for r in records:
        for key in ("workload", "path", "ms_per_step", "images_per_s", "epoch_seconds", "peak_memory_mb",
                    "device", "torch", "commit", "date"):
            assert key in r, key
        assert r["ms_per_step"] > 0 and r["peak_memory_mb"] > 0 and r["device"] == "cpu"
        assert r["epoch_seconds"] == pytest.approx(r["ms_per_step"] * r["steps_per_epoch"] / 1000, rel=0.01)
    assert "ms/step" in done.stdout and "search-first" in done.stdout


def test_bench_keeps_going_after_a_failed_record(tmp_path):
    # a short GPU lease: one record that fails (here: a search-only size given to the training workload) or
    # runs too long must not cost the others, and what was measured is on disk as soon as it was measured
    out = tmp_path / "cpu.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--small", "--steps", "1", "--warmup", "0",
           "--device", "cpu", "--paths", "plain", "--out", str(out),
           "--sizes", json.dumps({"layers": 3, "channels": 4, "batch_size": 4, "nodes": 2})]
    done = subprocess.run(cmd + ["--workloads", "train-darts-v2", "search-first"], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 1
    assert "unknown config key 'nodes'" in done.stderr and "failed: train-darts-v2 / plain" in done.stderr
    assert [(r["workload"], r["path"], r["nodes"]) for r in json.loads(out.read_text())] == [
        ("search-first", "plain", 2)]
    done = subprocess.run(cmd + ["--workloads", "search-first", "--record-timeout", "0.5"], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 1 and "ran past --record-timeout 0.5 s" in done.stderr
    assert len(json.loads(out.read_text())) == 1   # nothing added, nothing lost


# --- the trained network's compiled forward (diffnas train on CUDA) -------------------------------

def _network():
    from diffnas import genotype as G
    from diffnas.network import build_network
    torch.manual_seed(0)
    return build_network(G.load("DARTS_V2"), "cifar", 4, 3, 10, 3, auxiliary=True).train()


@pytest.mark.parametrize("compiler,expect", [
    (lambda fn, **kw: fn, "network compiled and checked in"),
    (lambda fn, **kw: (_ for _ in ()).throw(RuntimeError("no compiler")), "torch.compile of the network failed"),
    (lambda fn, **kw: (lambda *args: tuple(o * 1.5 if o is not None else o for o in fn(*args))),
     "the compiled network's outputs differ from eager"),
    (_skewed_statistics, "the compiled network's BN statistics differ from eager"),
])
def test_trained_network_compile_is_checked_against_eager(monkeypatch, capsys, compiler, expect):
    from diffnas.config import TrainConfig, from_dict
    from diffnas.train import train_step
    cfg = from_dict(TrainConfig, {"auxiliary": 0.4})
    eager, fast = _network(), _network()
    forward = fastpath.CheckedForward(fast)
    monkeypatch.setattr(torch, "compile", compiler)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(4, 3, 16, 16, generator=g), torch.randint(0, 10, (4,), generator=g)
    opts = [torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9) for m in (eager, fast)]
    torch.manual_seed(3)
    ref = train_step(eager, eager, opts[0], x, y, 0.2, cfg)   # drop-path: the RNG draws masks
    torch.manual_seed(3)
    got = train_step(forward, fast, opts[1], x, y, 0.2, cfg)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[0].startswith("diffnas: fast path: compiling the network") and expect in err[1]
    assert forward.path == ("compiled" if "checked in" in expect else "eager")
    # the trial left no trace (BN statistics, RNG): the first step is the eager one
    assert torch.equal(ref[0], got[0])
    for a, b in zip(eager.state_dict().values(), fast.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=0, atol=0)


def test_trained_network_with_bn_groups_compiles_and_its_trial_leaves_no_trace(monkeypatch, capsys):
    """bn_groups puts new buffer tensors in place (distributed.GroupedForward): the trial's restore
    wrote into the old ones, so the eager trial's statistics leaked into the compiled trial, which
    was then refused (BN statistics 0.37 apart with an identity 'compiler'), and into the first step."""
    from diffnas import distributed
    from diffnas.config import TrainConfig, from_dict
    from diffnas.train import train_step
    cfg = from_dict(TrainConfig, {"auxiliary": 0.4})
    eager, fast = (distributed.prepare(_network(), 2) for _ in range(2))
    forward = fastpath.CheckedForward(fast)
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: fn)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(4, 3, 16, 16, generator=g), torch.randint(0, 10, (4,), generator=g)
    opts = [torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9) for m in (eager, fast)]
    torch.manual_seed(3)
    train_step(eager, eager, opts[0], x, y, 0.2, cfg)
    torch.manual_seed(3)
    train_step(forward, fast, opts[1], x, y, 0.2, cfg)
    assert forward.path == "compiled", capsys.readouterr().err
    for (name, a), b in zip(eager.state_dict().items(), fast.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=0, atol=0, msg=name)


def test_trained_network_scored_before_any_step_is_not_checked_yet(monkeypatch, capsys):
    # a resume stopped in its test pass scores before it steps: eval mode, no grad, the eager forward
    net = _network()
    forward = fastpath.CheckedForward(net)
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: (_ for _ in ()).throw(AssertionError("compiled")))
    forward.eval()
    with torch.no_grad():
        logits, aux = forward(torch.randn(2, 3, 16, 16))
    assert logits.shape == (2, 10) and aux is None and not forward.checked and not net.training
    assert capsys.readouterr().err == ""
    forward.train()
    assert net.training and forward.training


def test_check_compiled_script_fails_when_the_batched_edges_differ_from_plain(monkeypatch, capsys):
    # the batched edges are the default on CUDA; the GPU session's first check covers them too
    check = _load_benchmark("check_compiled")
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: fn)
    monkeypatch.setattr(torch._dynamo, "reset", lambda: None)
    real = fused_lib.edge_forward
    monkeypatch.setattr(fused_lib, "edge_forward", lambda *a, **kw: real(*a, **kw) * 1.5)
    argv = ["--device", "cpu", "--small", "--presets", "darts-1st", "--steps", "2", "--tol", "1e-3",
            "--sizes", json.dumps({"layers": 3, "channels": 4, "nodes": 2, "batch_size": 4})]
    assert check.main(argv) == 1
    assert "darts-1st: fused vs plain" in capsys.readouterr().out


@pytest.mark.skipif(fastpath._torch_version() < (2, 5), reason="torch < 2.5: a compiled module ignores weights "
                    "swapped in by functional_call (pytorch#97909); unsupported() refuses second order there")
def test_a_traced_second_order_step_equals_eager_bn_statistics_included(capsys):
    """BN running statistics written through functional_call under the tracer went elsewhere than in
    eager once (buffers swapped in for L_val(w')); the compile trial compared logits and gradients
    only then. aot_eager traces and differentiates as inductor does, with eager kernels: two steps
    of a one-node supernet must equal eager bitwise, statistics included (about 30 s here)."""
    cfg = search_config("darts", **{**TINY, "nodes": 1, "channels": 2})
    eager, fast = make_ctx(cfg, fused=True), make_ctx(cfg, fused=True)
    step = fastpath.CompiledStep(search_step, backend="aot_eager")
    for xt, yt, xv, yv in batches(2):
        search_step(eager, xt, yt, xv, yv, 0.025, True, "step")
        step(fast, xt, yt, xv, yv, 0.025, True, "step")
    assert step.active and "compiled and checked (4 graphs)" in capsys.readouterr().err
    for (name, a), b in zip(eager.supernet.state_dict().items(), fast.supernet.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=0, atol=0, msg=name)
    for a, b in zip(eager.arch.parameters(), fast.arch.parameters()):
        torch.testing.assert_close(b, a, rtol=0, atol=0)


def test_an_unknown_pointwise_mode_is_refused_when_the_run_starts(monkeypatch, capsys):
    """$DIFFNAS_POINTWISE=batched was a ValueError inside the first forward of a fused search."""
    from diffnas import cli

    monkeypatch.setattr(fused_lib, "POINTWISE", "batched")
    assert cli.main(["search", "--dry-run", "--edges", "fused", "--run-dir", "unused"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == \
        "diffnas: error: DIFFNAS_POINTWISE: 'batched' is not one of separate, grouped, matmul"
    from diffnas import tuning
    assert tuning.fused_edges("plain", torch.device("cpu")) is False   # the plain path does not read it


def test_an_eager_error_in_the_compile_trial_is_not_blamed_on_the_compiler(monkeypatch, capsys):
    """The eager reference trials ran inside the compiler's `except Exception`: an eager failure (a
    bug, out of memory) was reported as "torch.compile failed" and the run went on eager."""
    cfg = search_config("darts-1st", **TINY)
    ctx = make_ctx(cfg, fused=True)
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: compiled.append(fn) or fn)

    def broken(*args, **kwargs):
        raise RuntimeError("eager trial broke")

    monkeypatch.setattr(fastpath, "_trial", broken)
    with pytest.raises(RuntimeError, match="eager trial broke"):
        _one_step(ctx, fastpath.CompiledStep(search_step))
    assert compiled == [] and "torch.compile failed" not in capsys.readouterr().err


def test_a_run_gives_the_caller_its_warning_filters_back():
    """distributed.wrap adds a process-wide filter (a DDP stride warning) for the run's backward passes;
    a Python caller's filters are its own again once the call returns."""
    import warnings

    from diffnas.process_state import caller_state_kept

    with caller_state_kept():   # once first: torch imports sympy on the way out, which adds a filter of its own
        pass
    before = list(warnings.filters)
    with caller_state_kept():
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
        assert len(warnings.filters) == len(before) + 1
    assert warnings.filters == before
