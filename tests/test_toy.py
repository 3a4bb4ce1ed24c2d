"""The DARTS toy problem: the generic bilevel code against the closed form, the loop, the CLI, the figure."""

from __future__ import annotations

import csv
import json
import math
import xml.etree.ElementTree as ET

import pytest
import torch

from diffnas import bilevel, plots, toy
from diffnas.cli.toy import parse_xis
from diffnas.errors import ConfigError

XIS = (0.1, 0.3, 0.5, 0.7, 1.3)


def random_points(n: int, seed: int) -> list[tuple[float, float]]:
    g = torch.Generator().manual_seed(seed)
    return [tuple(p) for p in (torch.rand(n, 2, generator=g, dtype=torch.float64) * 10 - 5).tolist()]


@pytest.fixture(scope="module")
def runs() -> list[toy.ToyRun]:
    return toy.run_toy(toy.DEFAULT_XIS)


def by_hand(a: float, w: float, xi: float) -> float:
    """d/da L_val(w'(a), a) with w' = w - xi dL_train/dw = w - xi (2w - 2a), L_val = a w' - 2a + 1:
    w' + a dw'/da - 2 = w' + 2 xi a - 2 (the DARTS paper's toy problem, differentiated here)."""
    w_prime = w - xi * (2 * w - 2 * a)
    return w_prime + a * (2 * xi) - 2


@pytest.mark.parametrize("hessian", toy.HESSIANS)
@pytest.mark.parametrize("xi", XIS)
def test_second_order_matches_closed_form(hessian, xi):
    for a, w in random_points(8, seed=int(xi * 100)):
        got = toy.hypergradient(a, w, xi, hessian)
        assert got == pytest.approx(by_hand(a, w, xi), abs=1e-6), (a, w)


@pytest.mark.parametrize("hessian", toy.HESSIANS)
def test_second_order_takes_weights_that_do_not_require_grad(hessian):
    """The library call on plain tensors, as a loop of one's own holds them: both Hessian methods."""
    a, w, xi = 0.7, -1.3, 0.3
    alpha = {"a": torch.tensor(a, dtype=torch.float64, requires_grad=True)}
    weights = {"w": torch.tensor(w, dtype=torch.float64)}   # no requires_grad
    got = bilevel.second_order(toy.train_loss, toy.val_loss, weights, alpha, xi, method=hessian)
    assert got["a"].item() == pytest.approx(by_hand(a, w, xi), abs=1e-6)
    assert not weights["w"].requires_grad


def test_xi_zero_is_first_order():
    for a, w in random_points(8, seed=1):
        first = w - 2  # grad_a L_val(w, a)
        assert toy.hypergradient(a, w, 0.0) == pytest.approx(first, abs=1e-12)
        for hessian in toy.HESSIANS:  # second_order itself must reduce to first order at xi = 0
            g = bilevel.second_order(toy.train_loss, toy.val_loss, {"w": toy._leaf(w)}, {"a": toy._leaf(a)},
                                     0.0, method=hessian)
            assert float(g["a"]) == pytest.approx(first, abs=1e-9)


def _slipped_hessian_vector(train_loss, w, alpha, v, method="fd", eps=0.01, graph_grad=None, randomness=None):
    """The finite-difference Hessian-vector product with the known slip `(gp - gm) / 2 * r`."""
    norm = torch.sqrt(sum((t.detach() ** 2).sum() for t in v.values()))
    r = eps / norm.clamp_min(1e-12)
    gp = bilevel.grad(train_loss({n: p.detach() + r * v[n] for n, p in w.items()}, alpha), alpha)
    gm = bilevel.grad(train_loss({n: p.detach() - r * v[n] for n, p in w.items()}, alpha), alpha)
    return {n: (gp[n] - gm[n]) / 2 * r for n in alpha}


def test_precedence_slip_would_be_caught(monkeypatch):
    a, w, xi = 3.0, -1.0, 0.5
    exact = by_hand(a, w, xi)
    w_prime = w - xi * (2 * w - 2 * a)
    # the Hessian term is what separates second order from "first order at w'": here it is large
    assert exact - (w_prime - 2) == pytest.approx(2 * xi * a) and 2 * xi * a >= 3
    assert toy.hypergradient(a, w, xi, "fd") == pytest.approx(exact, abs=1e-6)
    monkeypatch.setattr(bilevel, "hessian_vector", _slipped_hessian_vector)
    buggy = toy.hypergradient(a, w, xi, "fd")
    assert abs(buggy - exact) > 1.0  # the acceptance tolerance (1e-6) catches it by far
    assert buggy == pytest.approx(w_prime - 2, abs=1e-3)  # the slip silently turns it into first order


def test_implicit_is_exact_hypergradient():
    for a, w in random_points(8, seed=2):  # grad_a L_val - H_aw H_ww^-1 grad_w L_val = (w - 2) + a
        assert toy.hypergradient(a, w, None) == pytest.approx(w + a - 2, abs=1e-9)
    assert toy.hypergradient(1.0, 1.0, None) == pytest.approx(0.0, abs=1e-12)  # the optimum is stationary


def test_implicit_reference_converges_to_optimum(runs):
    ref = runs[-1]
    assert ref.xi is None and ref.method == "implicit" and ref.status == "converged"
    assert ref.distance < 1e-2
    assert math.hypot(ref.alpha - 1, ref.w - 1) == pytest.approx(ref.distance)


def test_rows_follow_the_requested_xis(runs):
    assert [r.xi for r in runs] == [*toy.DEFAULT_XIS, None]
    assert [r.method for r in runs] == ["first_order"] + ["second_order_fd"] * 3 + ["implicit"]
    for r in runs[:-1]:  # the unrolled iteration stops near its own fixed point on w = a: a = 2 / (1 + 2 xi)
        assert r.status == "converged"
        assert r.alpha == pytest.approx(2 / (1 + 2 * r.xi), abs=2e-2)
        assert r.w == pytest.approx(r.alpha, abs=1e-2)


def test_trajectories_and_stopping_rule(runs):
    for r in runs:
        t = r.trajectory
        assert t.dtype == torch.float64 and t.shape == (r.iterations + 1, 2)
        assert t[0].tolist() == [2.0, -2.0]
        assert t[-1].tolist() == [r.alpha, r.w]
        assert r.seconds_per_iteration > 0
        steps = (t[1:] - t[:-1]).abs()
        if r.status == "converged":
            assert (steps[-1] < 1e-4).all()
            assert not (steps[:-1] < 1e-4).all(1).any()  # and it did not miss an earlier stop
        else:
            assert r.iterations == 10000


def test_max_iter_and_divergence():
    r, = toy.run_toy([0.5], max_iter=5, reference=False)
    assert (r.iterations, r.status, r.trajectory.shape) == (5, "max_iter", (6, 2))
    r, = toy.run_toy([100.0], reference=False)
    assert r.status == "diverged" and r.iterations < 10000
    assert json.loads(json.dumps(r.to_dict(), allow_nan=False))["status"] == "diverged"


def test_exact_hessian_gives_the_same_runs(runs):
    exact = toy.run_toy([0.3], hessian="exact", reference=False)[0]
    fd = runs[1]
    assert (exact.method, exact.iterations) == ("second_order_exact", fd.iterations)
    assert torch.allclose(exact.trajectory, fd.trajectory, atol=1e-9)


@pytest.mark.parametrize("text", ["abc", "0,-0.1", "", "0,,0.5", "nan", "inf", "0.3;0.5"])
def test_bad_xi_is_a_config_error(text):
    with pytest.raises(ConfigError) as e:
        parse_xis(text)
    assert "\n" not in str(e.value)


def test_parse_xis():
    assert parse_xis("0, 0.3,0.5 ,1e-1") == [0.0, 0.3, 0.5, 0.1]
    with pytest.raises(ConfigError):
        toy.run_toy([-1.0])
    with pytest.raises(ConfigError):
        toy.run_toy([0.5], hessian="fdd")


def test_the_python_api_refuses_a_lone_xi_and_a_negative_one_in_one_line():
    """run_toy(0.5) was "TypeError: 'float' object is not iterable"; run_one(-0.5) ran, as run_toy([-0.5])
    did not."""
    with pytest.raises(ConfigError, match=r"^xi: expected a sequence of numbers, got 0.5 \(a list of one for one "
                                          r"run: \[0.5\]\)$"):
        toy.run_toy(0.5)
    with pytest.raises(ConfigError, match=r"^xi: -0.5 is not a finite number >= 0$"):
        toy.run_one(-0.5)
    with pytest.raises(ConfigError, match="^toy: need lr > 0"):
        toy.run_one(0.0, lr=0.0)
    # a string lr and a fractional max_iter were TypeErrors, a start of one number an IndexError, True a 1
    for kw in ({"lr": "a"}, {"max_iter": 2.5}, {"max_iter": True}, {"lr": True}):
        with pytest.raises(ConfigError, match=r"^toy: lr and tol must be numbers, max_iter an int \(got "):
            toy.run_toy([0.0], **kw)
    for start in ((1.0,), ("a", "b"), (float("nan"), 0.0)):
        with pytest.raises(ConfigError, match=r"^start: expected \(alpha, w\), two finite numbers, got "):
            toy.run_one(0.0, start=start)
    # a numpy sweep (np.linspace) and a generator are sequences of numbers too
    import numpy as np

    runs = toy.run_toy(np.array([0.0, 0.5], dtype=np.float32), max_iter=3, reference=False)
    assert [r.method for r in runs] == [toy.method_name(0.0), toy.method_name(0.5)]
    assert len(toy.run_toy((x for x in [0.0]), max_iter=3, reference=False)) == 1


def check_figures(paths):
    png, svg = sorted(paths, key=lambda p: p.suffix)
    assert png.suffix == ".png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert svg.suffix == ".svg" and ET.parse(svg).getroot().tag.endswith("svg")
    assert not list(png.parent.glob("*.tmp"))


def test_figure_files_are_valid(runs, tmp_path):
    check_figures(plots.save_figure(plots.toy_figure(runs), tmp_path / "fig" / "toy"))


def test_many_xi_values_wrap_into_rows_of_four(runs, tmp_path):
    # ten xi values were one strip of 3960 x 374 pixels, unreadable once embedded
    from PIL import Image
    many = (list(runs) * 10)[:10]
    png = next(p for p in plots.save_figure(plots.toy_figure(many), tmp_path / "fig" / "toy") if p.suffix == ".png")
    with Image.open(png) as im:
        width, height = im.size
    assert width / height < 2   # 4 columns x 3 rows
    svg = (tmp_path / "fig" / "toy.svg").read_text()
    assert svg.count("a (architecture)") == 4 and svg.count("w (weights)") == 3   # one axis label per column / row
    # every panel shows its a values (3.5 the last tick): with a short last row the panels above its gaps had none
    assert svg.count(">3.5<") == 10


@pytest.fixture
def cli(monkeypatch):
    """diffnas.cli.main with only the `toy` subcommand registered (the others may not exist yet)."""
    import diffnas.cli as cli_pkg
    monkeypatch.setattr(cli_pkg, "COMMANDS", ("toy",))
    return cli_pkg.main


def test_cli_json_csv_and_figures(cli, tmp_path, capsys):
    out, table = tmp_path / "toy", tmp_path / "rows" / "toy.csv"
    assert cli(["toy", "--xi", "0,0.5", "--json", "--csv", str(table), "--out", str(out)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["xi"] for r in rows] == [0.0, 0.5, None]
    for r in rows:
        assert {"xi", "iterations", "alpha", "w", "seconds_per_iteration"} <= set(r)
    assert rows[-1]["method"] == "implicit" and rows[-1]["distance"] < 1e-2
    with open(table, newline="") as f:
        assert [r["method"] for r in csv.DictReader(f)] == ["first_order", "second_order_fd", "implicit"]
    check_figures([out / "toy.png", out / "toy.svg"])


def test_cli_table_and_hessian_flag(cli, tmp_path, capsys):
    assert cli(["toy", "--xi", "0.7", "--hessian", "exact", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "second_order_exact" in text and "implicit" in text and "toy.svg" in text


@pytest.mark.parametrize("xi", ["0,x", "-0.3"])
def test_cli_bad_xi_exits_2(cli, tmp_path, capsys, xi):
    assert cli(["toy", f"--xi={xi}", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("diffnas: error: --xi") and err.count("\n") == 1
    assert not list(tmp_path.iterdir())


def test_cli_out_that_is_a_file_is_one_line_before_any_run(cli, tmp_path, capsys):
    (tmp_path / "afile").write_text("mine")
    assert cli(["toy", "--out", str(tmp_path / "afile" / "sub")]) == 2
    assert capsys.readouterr().err == f"diffnas: error: --out: {tmp_path / 'afile'} is a file, not a folder\n"
    assert (tmp_path / "afile").read_text() == "mine"


def test_the_table_keeps_diverged_numbers_apart():
    """xi = 200 diverges to |a| ~ 1e6 and |w| ~ 4e4: every number stays its own column."""
    runs = toy.run_toy([0.25, 200.0], reference=False)
    rows = {r.label: r for r in runs}
    for line in toy.format_table(runs).splitlines()[2:]:
        label, rest = line[:17].strip(), line[17:].split()
        r = rows[label]
        method, iters, alpha, w, dist = rest[0], int(rest[1]), *map(float, rest[2:5])
        assert (method, iters, rest[-1]) == (r.method, r.iterations, r.status)
        assert alpha == pytest.approx(r.alpha, rel=1e-3) and w == pytest.approx(r.w, rel=1e-3)
        assert dist == pytest.approx(r.distance, rel=1e-3)
    assert rows["xi = 200"].status == "diverged" and abs(rows["xi = 200"].w) > 1e4


def test_a_csv_path_that_cannot_be_a_file_is_one_line_before_any_run(tmp_path, capsys):
    """--csv naming a folder, or a path under a file, failed with the OS's words after the runs."""
    from diffnas import cli

    afile = tmp_path / "afile"
    afile.write_text("x")
    for csv, expected in ((tmp_path, f"--csv: {tmp_path} is a folder; name the CSV file to write"),
                          (afile / "x.csv", f"--csv: {afile} is a file, not a folder")):
        assert cli.main(["toy", "--xi", "0", "--csv", str(csv), "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert err == f"diffnas: error: {expected}\n"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("count", [5, 4])
def test_the_legend_is_off_the_panels(runs, count):
    """In the first panel's corner it covered contours and their labels: now in a spare slot of the last
    row, or (no spare slot) under the panels."""
    fig = plots.toy_figure((list(runs) * 4)[:count])
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    assert len(panels) == count and all(ax.get_legend() is None for ax in panels)
    legends = [ax.get_legend() for ax in fig.axes if ax.get_visible() and not ax.axison] + list(fig.legends)
    assert len(legends) == 1
    assert [t.get_text() for t in legends[0].get_texts()] == ["L_val contours", "feasible w = a", "trajectory",
                                                              "start", "end", "optimum (1, 1)"]


def test_the_contour_labels_are_dark_enough_to_read_on_white(runs):
    """They took their contour's colour, and viridis's top levels are a pale yellow on white."""
    from matplotlib.colors import to_hex

    from diffnas import celldiagram as C

    fig = plots.toy_figure(list(runs)[:1])
    labels = [t for ax in fig.axes for t in ax.texts if t.get_text().replace(".", "").lstrip("-").isdigit()]
    assert len(labels) > 5
    assert all(C.contrast("#ffffff", to_hex(t.get_color())) >= 4.5 for t in labels)


def test_the_toy_figure_names_the_hessian_and_draws_a_diverged_run_until_it_leaves():
    """Panels read "xi = 0.3" with --hessian fd and exact alike; a diverged run swinging in sign each
    step drew, clipped, a solid band over the panel, its end marker off the canvas."""
    fd, exact = toy.run_one(0.3, "fd", max_iter=50), toy.run_one(0.3, "exact", max_iter=50)
    gone = toy.run_one(60.0, max_iter=200)
    assert gone.status == "diverged"
    fig = plots.toy_figure([fd, exact, gone])
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert panels[0].get_title().startswith("xi = 0.3, fd: ") and panels[1].get_title().startswith("xi = 0.3, exact: ")
    assert panels[2].get_title().endswith("\ndiverged: drawn until it leaves")
    (a0, a1), (w0, w1) = panels[2].get_xlim(), panels[2].get_ylim()
    path = next(line for line in panels[2].get_lines() if line.get_label() == "trajectory").get_xydata()
    inside = [(a0 <= a <= a1 and w0 <= w <= w1) for a, w in path]
    # every point inside but the one that leaves (drawn again as the path's end)
    assert not inside[-1] and all(ok or tuple(p) == tuple(path[-1]) for ok, p in zip(inside, path))
    assert len(path) < len(gone.trajectory)
