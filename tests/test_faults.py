"""Nothing lost: kills (SIGKILL, also inside a checkpoint write) and SIGTERM resume to the exact result
of an uninterrupted search; NaN/Inf stops the run saying what and when, keeps the last good
checkpoint, and --nan-rollback reloads it with lower learning rates; search collapse is visible.

The kill tests run `python -m diffnas search` as a subprocess, as a user would, on one thread
(OMP_NUM_THREADS=1: the tiny convolutions are ~50x slower when two threads fight over shared cores).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from diffnas import atomic, checkpoint, cli
from diffnas import genotype as G
from diffnas.config import search_config
from diffnas.errors import CheckpointError, DataError
from diffnas.notices import command_line
from diffnas.runlog import RunLog
from diffnas.search import collapse_warning, lr_at, search
from diffnas.supernet import Supernet

search_mod = importlib.import_module("diffnas.search")  # `diffnas.search` is also the function

REPO = Path(__file__).resolve().parents[1]
# first order keeps the subprocess tests cheap; test_search.py resumes second order (in process)
TINY = dict(dataset="synthetic", layers=3, channels=4, nodes=2, batch_size=8, epochs=3, max_steps=3)
TINY_ARGS = ["--preset", "darts-1st", "--deterministic", "--no-plots",
             *[a for k, v in TINY.items() for a in (f"--{k.replace('_', '-')}", str(v))]]
ENV = {**os.environ, "OMP_NUM_THREADS": "1",
       "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}

# Runs `diffnas` with checkpoint writes instrumented: the N-th write of checkpoint.pt writes half its
# bytes to the temporary file, fsyncs them, touches a marker and hangs, so the test can SIGKILL it
# in the middle of the write. Nothing in diffnas is patched for this; the child patches itself.
TORN_SAVE = """
import os, sys, time
import diffnas.atomic as ck

real_open, seen = open, [0]
marker, nth = os.environ["FAULT_MARKER"], int(os.environ["FAULT_SAVE"])


class Torn:
    def __init__(self, f):
        self.f = f
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        return self.f.__exit__(*exc)
    def write(self, data):
        self.f.write(data[: len(data) // 2])
        self.f.flush()
        os.fsync(self.f.fileno())
        real_open(marker, "w").close()
        time.sleep(600)
    def flush(self):
        self.f.flush()
    def fileno(self):
        return self.f.fileno()


def instrumented_open(path, mode="r", *args, **kwargs):
    f = real_open(path, mode, *args, **kwargs)
    if ".checkpoint.pt.tmp-" in os.fspath(path):
        seen[0] += 1
        if seen[0] == nth:
            return Torn(f)
    return f


ck.open = instrumented_open  # module global: found before the builtin by atomic_write_bytes
from diffnas.cli import main
sys.exit(main())
"""


# Runs `diffnas` that sends itself SIGTERM right after its N-th search step (TERM_AFTER_STEP): the
# signal arrives as a user's would, at a known step whatever the machine's speed
TERM_AFTER_STEP = """
import importlib, os, signal, sys

search_mod = importlib.import_module("diffnas.search")
real, calls, nth = search_mod.search_step, [0], int(os.environ["TERM_AFTER_STEP"])


def step(*args, **kwargs):
    out = real(*args, **kwargs)
    calls[0] += 1
    if calls[0] == nth:
        os.kill(os.getpid(), signal.SIGTERM)
    return out


search_mod.search_step = step
from diffnas.cli import main
sys.exit(main())
"""


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted search (in this process; the same computation as the CLI's)."""
    run_dir = tmp_path_factory.mktemp("faults") / "full"
    result = search(search_config("darts-1st", **TINY, deterministic=True, plots=False, run_dir=str(run_dir)))
    assert not result.interrupted
    return run_dir


def launch(cwd: Path, *args: str, script: Path | None = None, env: dict | None = None) -> tuple[subprocess.Popen, Path]:
    """Start `diffnas search ARGS` (or `python SCRIPT search ARGS`); stderr goes to a file."""
    log = cwd / f"stderr-{time.monotonic_ns()}.txt"
    head = [sys.executable, str(script)] if script else [sys.executable, "-m", "diffnas"]
    with open(log, "wb") as err:
        proc = subprocess.Popen([*head, "search", *args], cwd=cwd, env={**ENV, **(env or {})},
                                stdout=subprocess.DEVNULL, stderr=err)
    return proc, log


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"exited early with {proc.returncode}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def saved(run_dir: Path) -> dict:
    return checkpoint.load(run_dir / "checkpoint.pt")


def assert_same_result(a: Path, b: Path) -> None:
    """Weights, alpha, optimiser momenta and alpha history bitwise equal; same genotype."""
    sa, sb = saved(a), saved(b)
    assert (sa["epoch"], sa["step"]) == (sb["epoch"], sb["step"]) == (TINY["epochs"], 0)
    for part in ("supernet", "arch"):
        assert sa[part].keys() == sb[part].keys()
        for k in sa[part]:
            assert torch.equal(sa[part][k], sb[part][k]), f"{part}.{k}"
    for k, buf in sa["w_opt"]["state"].items():
        assert torch.equal(buf["momentum_buffer"], sb["w_opt"]["state"][k]["momentum_buffer"])
    assert torch.equal(sa["history"], sb["history"])
    alphas_a = torch.load(a / "alphas.pt", weights_only=True)["history"]
    assert torch.equal(alphas_a, torch.load(b / "alphas.pt", weights_only=True)["history"])
    assert G.from_json((a / "genotype.json").read_text()) == G.from_json((b / "genotype.json").read_text())
    rows = [json.loads(line)["epoch"] for line in (b / "metrics.jsonl").read_text().splitlines()]
    assert rows == [1, 2, 3]


# ---------------------------------------------------------------------------------------------
# interruption


def test_sigkill_at_random_moments_and_inside_a_checkpoint_write_resumes_exactly(tmp_path, reference):
    run = tmp_path / "run"
    script = tmp_path / "torn_save.py"
    script.write_text(TORN_SAVE)
    marker = tmp_path / "in-save"

    # 1. killed in the middle of writing the second checkpoint (end of epoch 2)
    proc, _ = launch(tmp_path, *TINY_ARGS, "--run-dir", str(run), script=script,
                     env={"FAULT_MARKER": str(marker), "FAULT_SAVE": "2"})
    try:
        wait_for(marker.exists, proc)
    finally:
        proc.kill()
        proc.wait()
    torn = list(run.glob(".checkpoint.pt.tmp-*"))
    assert len(torn) == 1 and 0 < torn[0].stat().st_size < (run / "checkpoint.pt").stat().st_size
    assert saved(run)["epoch"] == 1  # the previous checkpoint, intact

    # 2. killed at random moments of resumed runs (training steps, evaluation, saves)
    rng = random.Random(1234)
    for _ in range(2):
        proc, log = launch(tmp_path, "--resume", str(run))
        try:
            wait_for(lambda: "resuming" in log.read_text(errors="replace"), proc)
            time.sleep(rng.uniform(0.0, 3.0))
        except AssertionError:
            assert proc.poll() == 0, log.read_text()  # it finished before the kill, and well
        finally:
            proc.kill()
            proc.wait()
        state = saved(run)  # whatever the moment, a loadable checkpoint of a whole epoch
        assert 1 <= state["epoch"] <= TINY["epochs"] and state["step"] == 0

    # 3. resume to the end (in this process, sparing a start-up): the alphas and weights of the run
    # never killed
    assert cli.main(["search", "--resume", str(run)]) == 0
    assert not list(run.glob(".checkpoint.pt.tmp-*"))  # the torn temporary file was cleaned up
    assert_same_result(reference, run)


def test_sigterm_finishes_the_step_saves_and_resumes_exactly(tmp_path, reference, capsys):
    run = tmp_path / "run"
    script = tmp_path / "term_after_step.py"
    script.write_text(TERM_AFTER_STEP)
    nth = TINY["max_steps"] + 2   # the signal arrives during epoch 2's second step
    proc, log = launch(tmp_path, *TINY_ARGS, "--run-dir", str(run), script=script, env={"TERM_AFTER_STEP": str(nth)})
    try:
        code = proc.wait(timeout=180)
    finally:
        proc.kill()
    err = log.read_text()
    assert code == 128 + signal.SIGTERM, err
    assert "interrupted at epoch 2 step 2" in err and f"resume with: diffnas search --resume {run}\n" in err
    state = saved(run)
    assert (state["epoch"], state["step"]) == (1, 2)  # the step it was in finished, and its exact position

    assert cli.main(["search", "--resume", str(run)]) == 0
    assert f"resuming {run} at epoch 2 step {state['step']}" in capsys.readouterr().err
    assert_same_result(reference, run)


def test_a_stop_during_an_epochs_checkpoint_stops_after_that_epoch_and_resumes_exactly(tmp_path, reference,
                                                                                       capsys, monkeypatch):
    """SIGTERM while the end of epoch 1 is being saved: the search stops there, not one step into epoch 2
    (it ran a step of the next epoch before the loops shared loop.py)."""
    run = tmp_path / "run"
    real_save, saves = checkpoint.save, []

    def save_then_term(*args, **kwargs):
        real_save(*args, **kwargs)
        saves.append(1)
        if len(saves) == 1:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(checkpoint, "save", save_then_term)
    result = search(search_config("darts-1st", **TINY, deterministic=True, plots=False, run_dir=str(run)),
                    raise_on_stop=False)
    err = capsys.readouterr().err
    assert result.interrupted and result.exit_code == 128 + signal.SIGTERM
    assert f"interrupted after epoch 1; checkpoint saved; resume with: diffnas search --resume {run}" in err
    assert (saved(run)["epoch"], saved(run)["step"]) == (1, 0) and len(saves) == 1
    assert [row["epoch"] for row in result.metrics] == [1]

    monkeypatch.setattr(checkpoint, "save", real_save)
    assert cli.main(["search", "--resume", str(run)]) == 0
    assert f"resuming {run} at epoch 2 step 0" in capsys.readouterr().err
    assert_same_result(reference, run)


def term_after_the_last_save(monkeypatch) -> list:
    """SIGTERM right after the checkpoint of a TINY search's last epoch is written (the late stop);
    returns the list of saves so far, which a test clears to run again."""
    real_save, saves = checkpoint.save, []

    def save_then_term(*args, **kwargs):
        real_save(*args, **kwargs)
        saves.append(1)
        if len(saves) == TINY["epochs"]:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(checkpoint, "save", save_then_term)
    return saves


def test_a_stop_while_the_last_epoch_is_saved_keeps_the_search_and_stops_a_python_script(tmp_path, monkeypatch):
    """SIGTERM during the last epoch's checkpoint write: the search is complete and kept, and
    search(cfg) raises SystemExit(143) as for any stop, so a script's next line (training) does not run;
    raise_on_stop=False returns the complete result with late_stop set."""
    saves = term_after_the_last_save(monkeypatch)
    cfg = search_config("darts-1st", **TINY, deterministic=True, plots=False, run_dir=str(tmp_path / "a"))
    with pytest.raises(SystemExit) as info:
        search(cfg)
    assert info.value.code == 128 + signal.SIGTERM and (tmp_path / "a" / "genotype.json").is_file()
    saves.clear()
    result = search(dataclasses.replace(cfg, run_dir=str(tmp_path / "b")), raise_on_stop=False)
    assert result.late_stop == 128 + signal.SIGTERM and not result.interrupted and len(result.metrics) == 3


def test_diffnas_search_prints_a_late_stopped_search_and_exits_with_the_stop(tmp_path, monkeypatch, capsys):
    """The command line's side of the same stop: the complete search's genotype and folder are printed,
    and the exit status is the stop's (143), so `diffnas search ... && diffnas train ...` goes no further."""
    term_after_the_last_save(monkeypatch)
    run = tmp_path / "run"
    with_plots = [a for a in TINY_ARGS if a != "--no-plots"]
    assert cli.main(["search", *with_plots, "--run-dir", str(run)]) == 128 + signal.SIGTERM
    out, err = capsys.readouterr()
    assert "genotype: Genotype(" in out and f"run folder: {run}" in out
    assert f"stopped after the search finished (it is complete and saved: {run})" in err
    assert (run / "genotype.json").is_file()
    # asked to stop: the seconds of drawing are skipped, with how to draw them later
    assert f"figures not drawn (stopped); draw them with `diffnas plot {run}`" in err
    assert not list((run / "figures").glob("cell_*"))


def test_atomic_write_keeps_the_previous_file_when_the_write_fails(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    atomic.atomic_write_bytes(path, b"old")

    def no_space(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", no_space)
    with pytest.raises(OSError):
        atomic.atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]
    monkeypatch.undo()
    atomic.atomic_write_bytes(path, b"newer")
    assert path.read_bytes() == b"newer" and [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_a_refused_write_names_the_file_not_its_hidden_temporary(tmp_path):
    """A read-only folder said "romnt/.config.json.tmp-HOST-PID: Read-only file system"."""
    import errno

    from diffnas.atomic import atomic_write

    def read_only(tmp):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(tmp))

    with pytest.raises(OSError) as caught:
        atomic_write(tmp_path / "config.json", read_only)
    assert caught.value.filename == str(tmp_path / "config.json") and caught.value.errno == errno.EROFS
    assert not any(tmp_path.iterdir())


def test_a_run_in_a_folder_it_cannot_write_is_refused_at_its_start(tmp_path, monkeypatch, capsys):
    """A read-only run folder (a mount, another user's) failed at the first write, after a resume's
    notes, naming a hidden temporary file; it is one line of the folder before anything else. Root,
    which these tests run as, writes anywhere: the file system's answers are faked."""
    import diffnas.runlog as runlog

    run, fresh = tmp_path / "run", tmp_path / "fresh"
    assert cli.main(["search", "--dry-run", "--no-plots", "--run-dir", str(run)]) == 0
    fresh.mkdir()
    access = os.access
    monkeypatch.setattr(runlog.os, "access", lambda path, mode: Path(path) not in (run, fresh) and access(path, mode))
    monkeypatch.setattr(runlog.os, "statvfs", lambda path: type("V", (), {"f_flag": os.ST_RDONLY})())
    for command, said in ((["search", "--resume", str(run), "--epochs", "2", "--no-plots"], f"--resume: {run}: "
                           f"cannot write there"),
                          (["search", "--dry-run", "--no-plots", "--run-dir", str(fresh / "new")],
                           f"--run-dir: {fresh / 'new'}: cannot write into {fresh}, where it is to be made"),
                          (["toy", "--csv", str(fresh / "rows.csv"), "--out", str(tmp_path / "toy")],
                           f"--csv: {fresh}: cannot write there"),
                          (["report", str(run)], f"RUN_DIR: {run / 'figures'}: cannot write into {run}, where it is "
                                                 f"to be made"),
                          (["plot", str(run)], f"RUN_DIR: {run / 'figures'}: cannot write into {run}, where it is "
                                               f"to be made")):
        capsys.readouterr()
        assert cli.main(command) == 2
        # what to do instead: a resume in a copy, plot and report elsewhere (plot was told of resuming)
        hint = {"search": " (a run to resume: a copy of its folder)" if "--resume" in command else "", "toy": "",
                "report": " (--out DIR writes elsewhere)", "plot": " (--out DIR writes elsewhere)"}[command[0]]
        assert capsys.readouterr().err == (f"diffnas: error: {said} (a read-only file system); a run or its output "
                                           f"needs a folder this process can write to{hint}\n"), command
    assert not (fresh / "new").exists() and not (tmp_path / "toy").exists()
    # the report of the read-only run, written elsewhere (with its figures), names the run's own files
    assert cli.main(["report", str(run), "--out", str(tmp_path / "elsewhere")]) == 0
    assert (tmp_path / "elsewhere" / "report.html").is_file() and (tmp_path / "elsewhere" / "figures").is_dir()
    page = (tmp_path / "elsewhere" / "report.html").read_text()
    assert not (run / "report.html").exists() and str(run.resolve()) in page
    assert [row["epoch"] for row in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())] == [1]


def test_a_failed_figure_or_page_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    """atomic_write: a writer that raises (disk full, dot failing, Ctrl-C) leaves the file as it was and
    no temporary file (the figure and report writers left theirs behind)."""
    from diffnas.atomic import atomic_write

    path = tmp_path / "report.html"
    path.write_text("old")

    def fails(tmp):
        tmp.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, fails)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_the_next_write_removes_a_dead_writers_temporary_and_keeps_a_live_ones(tmp_path):
    from diffnas.atomic import _HOST, atomic_write

    path = tmp_path / "cell[1].png"   # glob characters in the name
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        kept = [f".cell[1].png.tmp-{_HOST}-{alive.pid}",   # the live process may still be writing its own
                f".cell[1].png.tmp-elsewhere-{dead.pid}",   # another machine's PID says nothing here
                f".cell[1].png.tmp-{_HOST}-\u00b2"]       # not a PID at all
        for name in [f".cell[1].png.tmp-{_HOST}-{dead.pid}", *kept]:
            (tmp_path / name).write_bytes(b"torn")
        atomic_write(path, lambda tmp: tmp.write_bytes(b"new"))
        assert path.read_bytes() == b"new"
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["cell[1].png", *kept])
    finally:
        alive.kill()
        alive.wait()


def test_resume_drops_a_metrics_row_torn_by_a_kill(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1, "loss": 2.0}\n{"epoch": 2, "loss": 1.9}\n{"epo')
    RunLog(tmp_path, tensorboard=False).truncate_metrics(1)
    assert (tmp_path / "metrics.jsonl").read_text() == '{"epoch": 1, "loss": 2.0}\n'


# ---------------------------------------------------------------------------------------------
# numerical failure

NAN_ARGS = ["--preset", "darts-1st", "--dataset", "synthetic", "--layers", "3", "--channels", "4", "--nodes", "2",
            "--batch-size", "8", "--epochs", "2", "--max-steps", "2", "--no-plots", "--deterministic"]


def error_line(err: str) -> str:
    """The last line of stderr (progress bars draw with carriage returns before it)."""
    return err.replace("\r", "\n").strip().splitlines()[-1]


def test_nan_stops_saying_what_and_when_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    # alpha steps start in epoch 2 (one warm-up epoch); an absurd alpha lr makes them overflow, at
    # half the lr too: one rollback, then the run stops
    run = tmp_path / "run"
    assert cli.main(["search", *NAN_ARGS, "--warmup-epochs", "1", "--alpha-lr", "1e30", "--nan-rollback", "1",
                     "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err.replace("\r", "\n")
    assert err.count("; rolled back to the start of epoch 2 with lr x0.5") == 1
    line = error_line(err)
    assert line.startswith("diffnas: error: non-finite ") and " at epoch 2 step " in line
    assert line.endswith(f"; run stopped, last good checkpoint: {run / 'checkpoint.pt'} (after epoch 1) "
                         f"(1 of --nan-rollback 1 rollbacks used)")
    state = saved(run)
    assert state["epoch"] == 1 and state["step"] == 0
    tensors = [*state["supernet"].values(), *state["arch"].values()]
    assert all(torch.isfinite(t).all() for t in tensors if t.is_floating_point())

    # the same failure in the first epoch: nothing good to keep, and it says so
    assert cli.main(["search", *NAN_ARGS, "--w-lr", "1e30", "--run-dir", str(tmp_path / "early")]) == 2
    line = error_line(capsys.readouterr().err)
    assert line.startswith("diffnas: error: non-finite ") and " at epoch 1 step " in line
    # a resume would repeat it and cannot take another learning rate: it says to start anew
    assert line.endswith(f"; run stopped, no checkpoint was written yet; nothing is saved to resume, so start it "
                         f"anew with a lower learning rate: remove {tmp_path / 'early'} or name another --run-dir")
    # with --nan-rollback, it says why there was no rollback
    assert cli.main(["search", *NAN_ARGS, "--w-lr", "1e30", "--nan-rollback", "2", "--run-dir",
                     str(tmp_path / "early2")]) == 2
    assert error_line(capsys.readouterr().err).endswith(
        "; run stopped, no checkpoint was written yet (checkpoints are written at the end of each epoch, so "
        "--nan-rollback had none to go back to); nothing is saved to resume, so start it anew with a lower "
        f"learning rate: remove {tmp_path / 'early2'} or name another --run-dir")


def nan_batches_at(monkeypatch: pytest.MonkeyPatch, *steps: int) -> None:
    """The search's steps numbered `steps` (counted over the whole run, from 1) get a batch of NaN pixels."""
    real, calls = search_mod.search_step, {"n": 0}

    def bad_batches(ctx, xt, yt, *args):
        calls["n"] += 1
        if calls["n"] in steps:
            xt = xt * float("nan")
        return real(ctx, xt, yt, *args)

    monkeypatch.setattr(search_mod, "search_step", bad_batches)


def test_nan_rollback_reloads_and_continues_with_lower_learning_rates(tmp_path, capsys, monkeypatch):
    nan_batches_at(monkeypatch, 4)   # epoch 2, step 2, once
    run = tmp_path / "run"
    assert cli.main(["search", *NAN_ARGS, "--nan-rollback", "2", "--run-dir", str(run)]) == 0
    err = capsys.readouterr().err.replace("\r", "\n")
    assert "non-finite training loss at epoch 2 step 2; rolled back to the start of epoch 2 with lr x0.5" in err
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    cfg = search_config("darts-1st", **{**TINY, "epochs": 2, "max_steps": 2})
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[1]["w_lr"] == pytest.approx(lr_at(1, cfg) / 2) and rows[1]["alpha_lr"] == pytest.approx(3e-4 / 2)
    state = saved(run)
    assert state["rollbacks"] == 1 and state["lr_scale"] == 0.5 and torch.isfinite(state["history"]).all()


def test_each_nan_rollback_in_one_epoch_halves_the_learning_rate_again(tmp_path, capsys, monkeypatch):
    """A second rollback within the epoch reloaded the checkpoint's scale (1) and halved that: it retried
    at x0.5 each time, the same diverging epoch again, instead of x0.25."""
    nan_batches_at(monkeypatch, 4, 5)   # epoch 2 step 2, then its retry's first step
    run = tmp_path / "run"
    assert cli.main(["search", *NAN_ARGS, "--nan-rollback", "3", "--run-dir", str(run)]) == 0
    err = capsys.readouterr().err.replace("\r", "\n")
    assert "at epoch 2 step 2; rolled back to the start of epoch 2 with lr x0.5" in err
    assert "at epoch 2 step 1; rolled back to the start of epoch 2 with lr x0.25" in err
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    cfg = search_config("darts-1st", **{**TINY, "epochs": 2, "max_steps": 2})
    assert rows[1]["w_lr"] == pytest.approx(lr_at(1, cfg) / 4) and rows[1]["alpha_lr"] == pytest.approx(3e-4 / 4)
    state = saved(run)
    assert state["rollbacks"] == 2 and state["lr_scale"] == 0.25


# ---------------------------------------------------------------------------------------------
# search collapse


def test_collapse_warning_names_the_parameter_free_genes():
    assert collapse_warning(G.KNOWN["DARTS_V2"]) is None  # 2 skips of 8 genes
    skips = G.Genotype((("skip_connect", 0), ("skip_connect", 1), ("skip_connect", 0), ("max_pool_3x3", 2)), (2, 3),
                       G.KNOWN["DARTS_V2"].reduce[:4], (2, 3))
    text = collapse_warning(skips)
    assert text.startswith("the searched normal cell is dominated by parameter-free ops (4 of 4 genes, "
                           "3 skip_connect)")
    assert text.endswith("consider max_skips=1, skip_dropout=0.2 or fewer epochs")   # from Python
    with command_line():   # the same advice as flags for the command line's user
        _collapse_remedies_on_the_command_line(skips)


def test_a_genotype_still_that_of_alphas_start_is_no_collapse_but_said_as_such(tmp_path, capsys):
    """After one epoch of two architecture steps a dry run warned of "the known DARTS collapse" of a
    genotype its random start gave: unlearned, it says nothing of collapse."""
    from diffnas.collapse import unchanged_note

    skips = G.Genotype((("skip_connect", 0), ("skip_connect", 1), ("skip_connect", 0), ("max_pool_3x3", 2)), (2, 3),
                       G.KNOWN["DARTS_V2"].reduce[:4], (2, 3))
    start = G.to_json(skips)
    assert collapse_warning(skips, arch_epochs=1, start=start) is None
    assert collapse_warning(skips, arch_epochs=1, start=G.to_json(G.KNOWN["DARTS_V2"])) is not None   # it moved
    assert unchanged_note(skips, 1, G.to_json(G.KNOWN["DARTS_V2"])) is None and unchanged_note(skips, 0, start) is None
    # a search whose alpha cannot move (lr 1e-12): the note at its end and in its report, with no collapse warning
    run = tmp_path / "run"
    result = search(search_config("darts-1st", **{**TINY, "epochs": 1}, alpha_lr=1e-12, plots=False, run_dir=str(run)))
    note = ("the genotype is still the one of the architecture weights' random start: 1 epoch of architecture "
            "steps did not change it (a longer search would)")
    err = capsys.readouterr().err
    assert f"diffnas: note: {note}" in err and "collapse" not in err
    saved = torch.load(run / "checkpoint.pt", weights_only=False)["state"]["start_genotype"]
    assert saved == G.to_json(result.genotype)
    assert cli.main(["report", str(run)]) == 0
    assert note.replace("'", "&#x27;") in (run / "report.html").read_text()


def _collapse_remedies_on_the_command_line(skips: G.Genotype) -> None:
    # DARTS+'s criterion 1 stops at two skips in a normal cell: --max-skips 1 (the advice was 2, which
    # stopped at three and kept the collapsed cell it was to avoid)
    assert collapse_warning(skips).endswith("consider --max-skips 1, --skip-dropout 0.2 or fewer epochs")
    # after a short search (one epoch of architecture steps, the quick search's 5), fewer epochs is no advice
    assert collapse_warning(skips, arch_epochs=1).endswith("consider --max-skips 1 or --skip-dropout 0.2")
    assert collapse_warning(skips, arch_epochs=5).endswith("consider --max-skips 1 or --skip-dropout 0.2")
    assert collapse_warning(skips, arch_epochs=10).endswith("or fewer epochs")
    # a looser cap than 1 may still be tightened; a cap of 1 not
    assert "--max-skips 1" in collapse_warning(skips, max_skips=2) and \
        "--max-skips" not in collapse_warning(skips, max_skips=1)
    # pools, no skips: the skip remedies would change nothing (a dnas search of pools was told --max-skips 2)
    pools = G.Genotype((("max_pool_3x3", 0), ("avg_pool_3x3", 1), ("max_pool_3x3", 0), ("sep_conv_3x3", 2)), (2, 3),
                       G.KNOWN["DARTS_V2"].reduce[:4], (2, 3))
    assert collapse_warning(pools).endswith("(3 of 4 genes, 0 skip_connect): the known DARTS collapse; consider "
                                            "fewer epochs")
    # a remedy the run used already is not advised
    assert collapse_warning(skips, max_skips=1).endswith("collapse; consider --skip-dropout 0.2 or fewer epochs")
    assert collapse_warning(skips, arch_epochs=1, max_skips=1, skip_dropout=0.3).endswith("the known DARTS collapse")
    # one skip in the cell: no cap of 1 would stop on it
    one = G.Genotype((("skip_connect", 0), ("max_pool_3x3", 1), ("max_pool_3x3", 0), ("sep_conv_3x3", 2)), (2, 3),
                     G.KNOWN["DARTS_V2"].reduce[:4], (2, 3))
    assert "--max-skips" not in collapse_warning(one)


def test_collapse_warning_of_a_per_cell_genotype_names_its_normal_cells():
    """A dnas genotype's 4 normal cells were 'the searched normal cell' with 32 genes."""
    pools = G.Cell((("max_pool_3x3", 0), ("avg_pool_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 2)), (2, 3))
    reduce = G.Cell((("max_pool_3x3", 0), ("sep_conv_3x3", 1)), (2,), True)
    g = G.CellwiseGenotype(tuple(reduce if k in G.reduction_layers(6) else pools for k in range(6)))
    assert collapse_warning(g).startswith("the searched 4 normal cells are dominated by parameter-free ops "
                                          "(12 of 16 genes, 4 skip_connect)")


def test_collapse_warning_leaves_out_the_none_fillers_of_a_thresholded_genotype():
    """FairDARTS keeps ('none', j) where no op passed the threshold: they are not skips or pools. A
    cell of 1 sep_conv, 1 skip and 6 fillers was called collapsed (5 of 8 parameter-free genes)."""
    fillers = (("sep_conv_5x5", 0), ("none", 1), ("skip_connect", 1), ("none", 0), ("none", 0), ("none", 1),
               ("none", 0), ("none", 1))
    g = G.Genotype(fillers, (2, 3, 4, 5), G.KNOWN["DARTS_V2"].reduce, (2, 3, 4, 5))
    assert collapse_warning(g) is None
    mostly_pools = (("max_pool_3x3", 0), ("none", 1), ("avg_pool_3x3", 1), ("none", 0), ("sep_conv_3x3", 0),
                    ("none", 1), ("skip_connect", 0), ("none", 1))
    text = collapse_warning(G.Genotype(mostly_pools, (2, 3, 4, 5), G.KNOWN["DARTS_V2"].reduce, (2, 3, 4, 5)))
    assert text.startswith("the searched normal cell is dominated by parameter-free ops (3 of 4 genes, "
                           "1 skip_connect)")


def test_max_skips_stops_early_and_the_warning_is_shown(tmp_path, capsys):
    run = tmp_path / "run"
    # only skip connections to choose from: the normal cell has 4 > 1 of them after epoch 1
    assert cli.main(["search", *NAN_ARGS, "--epochs", "3", "--ops", "skip_connect", "--max-skips", "1",
                     "--skip-dropout", "0.3", "--run-dir", str(run)]) == 0
    err = capsys.readouterr().err.replace("\r", "\n")
    assert "early stop at epoch 1: a normal cell has more than 1 skip_connect" in err
    # skips alone to choose from: the genotype is its random start's, and said so, not called a collapse
    # (the collapse warning's remedies are checked on their own above)
    assert "diffnas: note: the genotype is still the one of the architecture weights' random start: 1 epoch" in err
    assert "known DARTS collapse" not in err
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1  # of 3 epochs
    assert (run / "genotype.json").is_file()
    # its report says why it stopped, not that a resume would go on (a resume searches no further)
    from diffnas import report

    text = " ".join(re.sub(r"<[^>]+>", " ", report.write_report(run).read_text()).split())
    assert "epochs done 1 of 3: early stop at epoch 1: a normal cell has more than 1 skip_connect" in text
    assert "--resume" not in text
    # at the last epoch nothing stops early (it said "early stop at epoch 1" of 1), but the cap is still
    # recorded: a resume with more epochs searches no further, as DARTS+ stops there
    assert cli.main(["search", *NAN_ARGS, "--epochs", "1", "--ops", "skip_connect", "--max-skips", "1",
                     "--run-dir", str(tmp_path / "one")]) == 0
    err = capsys.readouterr().err
    assert "early stop" not in err
    assert "skip cap (max_skips 1) reached at epoch 1, the last: a normal cell has more than 1" in err
    assert cli.main(["search", "--resume", str(tmp_path / "one"), "--epochs", "2"]) == 0
    assert "nothing more to search" in capsys.readouterr().err
    assert len((tmp_path / "one" / "metrics.jsonl").read_text().splitlines()) == 1
    assert json.loads((run / "config.json").read_text())["skip_dropout"] == 0.3


def test_a_run_stopped_by_max_skips_resumes_to_the_same_result(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    cfg = search_config("darts-1st", **{**TINY, "epochs": 3, "max_steps": 2}, ops=("skip_connect",), max_skips=1,
                        plots=False, deterministic=True, run_dir=str(run))
    first = search(cfg)
    stop = "early stop at epoch 1: a normal cell has more than 1 skip_connect"
    assert stop in capsys.readouterr().err
    assert saved(run)["epoch"] == 1 and saved(run)["early_stop"] == stop  # the checkpoint knows why

    steps = {"n": 0}
    real = search_mod.search_step

    def counted(*args):
        steps["n"] += 1
        return real(*args)

    monkeypatch.setattr(search_mod, "search_step", counted)
    # a resume, even one given more epochs, searches no further and says why
    for epochs in (3, 5):
        again = search(search_config("darts-1st", epochs=epochs), resume=run)
        assert f"diffnas: {run} ended early ({stop}); nothing more to search" in capsys.readouterr().err
        assert steps["n"] == 0 and again.genotype == first.genotype and torch.equal(again.history, first.history)
        assert again.metrics == first.metrics   # the saved rows, as a complete run returns them
    assert saved(run)["epoch"] == 1 and len((run / "metrics.jsonl").read_text().splitlines()) == 1
    assert json.loads((run / "config.json").read_text())["epochs"] == 3   # nothing more will run: not rewritten
    assert G.from_json((run / "genotype.json").read_text()) == first.genotype


def test_skip_dropout_wraps_only_the_skip_connections():
    from diffnas.ops import Identity

    net = Supernet(4, 10, 3, 2, ("skip_connect", "sep_conv_3x3"), 3, skip_dropout=0.3)
    drops = [m for m in net.modules() if isinstance(m, torch.nn.Dropout)]
    # skip_connect is the identity on stride-1 edges: the 5 edges of the normal cell 0, and in each of
    # the 2 reduction cells the one edge between nodes (the others, from the inputs, have stride 2 and
    # a factorized reduce, which is not dropped out)
    assert len(drops) == 5 + 2 * 1 and all(d.p == 0.3 for d in drops)
    wrapped = [m for m in net.modules() if isinstance(m, torch.nn.Sequential) and any(d in drops for d in m)]
    assert len(wrapped) == len(drops) and all(isinstance(m[0], Identity) and len(m) == 2 for m in wrapped)
    assert not any(isinstance(m, torch.nn.Dropout) for m in Supernet(4, 10, 3, 2, ("skip_connect",), 3).modules())


# ---------------------------------------------------------------------------------------------
# runs that cannot start, or cannot resume


def test_a_search_that_fails_to_start_leaves_no_folder(tmp_path, monkeypatch, capsys):
    missing = dict(TINY, dataset="cifar10", data_dir="/nonexistent")
    with pytest.raises(DataError, match="cifar10: .*/nonexistent"):
        search(search_config("darts-1st", **missing, run_dir=str(tmp_path / "new" / "run")))
    assert not (tmp_path / "new").exists()
    # the command line, with a folder named and with the default one (runs/search-<time>)
    assert cli.main(["search", "--dataset", "cifar10", "--data-dir", "/nonexistent",
                     "--run-dir", str(tmp_path / "X")]) == 2
    line = error_line(capsys.readouterr().err)
    assert line.startswith("diffnas: error: cifar10: ") and "/nonexistent" in line
    assert not (tmp_path / "X").exists()
    monkeypatch.chdir(tmp_path)
    assert cli.main(["search", "--dataset", "cifar10", "--data-dir", "/nonexistent"]) == 2
    assert not (tmp_path / "runs").exists()

    # a failure after the folder is made (the disk full as config.json is written): removed too,
    # with the parents this call made, but not a folder that was there before, nor what it holds
    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(RunLog, "write_json", disk_full)
    with pytest.raises(OSError):
        search(search_config("darts-1st", **TINY, run_dir=str(tmp_path / "a" / "b" / "run")))
    assert not (tmp_path / "a").exists()
    (tmp_path / "mine").mkdir()   # a folder of other files is refused before anything is made; one of
    (tmp_path / "mine" / ".keep").write_text("keep")   # hidden files only is taken, and kept as it was
    with pytest.raises(OSError):
        search(search_config("darts-1st", **TINY, run_dir=str(tmp_path / "mine")))
    assert [p.name for p in (tmp_path / "mine").iterdir()] == [".keep"]


def test_resume_refuses_a_checkpoint_that_does_not_fit_the_supernet(tmp_path, reference, capsys):
    run = Path(shutil.copytree(reference, tmp_path / "run"))
    blob = torch.load(run / "checkpoint.pt", weights_only=True)
    key = next(k for k, v in blob["state"]["supernet"].items() if v.dim() == 4)
    blob["state"]["supernet"][key] = torch.zeros(1, 1, 1, 1)
    torch.save(blob, run / "checkpoint.pt")
    with pytest.raises(CheckpointError, match=f"'supernet' weights do not fit this run's network "
                                              f"\\(1 of another shape, first '{key}'\\)"):
        search(search_config("darts-1st"), resume=run)
    del blob["state"]["arch"]
    torch.save(blob, run / "checkpoint.pt")
    assert cli.main(["search", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "diffnas: error: " in err and "'supernet' weights do not fit" in err
    assert (run / "config.json").is_file() and (run / "genotype.json").is_file()  # the run folder stays


def test_resume_of_a_finished_run_whose_checkpoint_was_deleted_is_refused_and_touches_nothing(tmp_path, reference,
                                                                                               capsys):
    """A finished search's checkpoint.pt deleted (to save disk): the resume took it for a run killed in
    its first epoch, emptied metrics.jsonl and genotypes.jsonl and searched again."""
    run = Path(shutil.copytree(reference, tmp_path / "run"))
    (run / "checkpoint.pt").unlink()
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    assert cli.main(["search", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{run / 'checkpoint.pt'}: missing, but the run recorded {TINY['epochs']} " \
        "epochs (deleted or moved?)" in err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    # a finished 1-epoch run: no row past epoch 1, but its genotype.json, written after the last checkpoint
    (run / "metrics.jsonl").write_text((run / "metrics.jsonl").read_text().splitlines()[0] + "\n")
    with pytest.raises(CheckpointError, match=r"missing, but the run finished \(genotype.json\)"):
        search(search_config("darts-1st"), resume=run)


def test_a_checkpoint_deleted_after_one_epoch_is_missed_not_taken_for_a_first_epoch(tmp_path, reference):
    """Stopped in epoch 2, resumed, then checkpoint.pt deleted: one metrics row (which a kill can also
    leave before the first checkpoint), so the resume said "no checkpoint yet; starting it over" and
    dropped the epoch (chaos walk). sessions.jsonl says a session resumed from a checkpoint."""
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(reference / "config.json", run / "config.json")
    (run / "metrics.jsonl").write_text('{"epoch": 1, "train_loss": 9.0}\n')
    sessions = [{"epoch": 1, "step": 0}, {"epoch": 2, "step": 2}]   # the start, then a resume mid-epoch 2
    (run / "sessions.jsonl").write_text("".join(json.dumps(row) + "\n" for row in sessions))
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    with pytest.raises(CheckpointError, match=r"checkpoint.pt: missing, but the run was resumed from it at epoch 2 "
                                              r"step 2 \(sessions.jsonl\) \(deleted or moved\?\)"):
        search(search_config("darts-1st"), resume=run)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_resume_of_a_search_killed_before_its_first_checkpoint_starts_over(tmp_path, reference, capsys):
    run = tmp_path / "run"
    run.mkdir()
    # what a kill during epoch 1 leaves (a torn row even), and no checkpoint
    shutil.copy(reference / "config.json", run / "config.json")
    (run / "metrics.jsonl").write_text('{"epoch": 1, "train_loss": 9.0}\n{"epo')
    (run / "genotypes.jsonl").write_text('{"epoch": 1, "genotype": {}}\n')
    assert cli.main(["search", "--resume", str(run)]) == 0
    assert f"diffnas: {run} has no checkpoint yet (stopped during its first epoch); starting it over" \
        in capsys.readouterr().err
    assert_same_result(reference, run)
    assert len((run / "genotypes.jsonl").read_text().splitlines()) == TINY["epochs"]


@pytest.mark.parametrize("command", ["search", "train"])
def test_a_fresh_run_into_a_folder_killed_before_its_first_checkpoint_is_refused(tmp_path, capsys, command):
    """A folder with config.json but no checkpoint yet is a run (killed during its first epoch): a fresh
    run there would append to its metrics; it is refused, and --resume starts it over."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    (run / "metrics.jsonl").write_text('{"epoch": 1}\n')
    argv = [command, "--dataset", "synthetic", "--layers", "3", "--channels", "4", "--epochs", "1",
            "--max-steps", "1", "--batch-size", "8", "--no-plots", "--run-dir", str(run)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert f"{run} holds a run that saved no checkpoint (it ended in its first epoch" in err
    assert f"diffnas {command} --resume {run}" in err and "or remove the folder to start anew" in err
    assert (run / "metrics.jsonl").read_text() == '{"epoch": 1}\n' and not (run / "checkpoint.pt").exists()


def test_finite_checks_name_the_first_non_finite_quantity_in_step_order():
    from diffnas.errors import NumericalError
    from diffnas.numerics import FiniteChecks
    checks = FiniteChecks()
    checks.add("architecture gradient", [torch.ones(3), None])
    checks.add("training loss", [torch.tensor(float("nan"))])
    checks.add("weight gradient", [torch.tensor(float("inf"))])
    with pytest.raises(NumericalError, match="^non-finite training loss at step 4$"):
        checks.check("at step 4")
    fine = FiniteChecks()
    fine.add("loss", [torch.zeros(2), torch.ones(1)])
    fine.add("nothing", [None])
    fine.check("at step 1")   # no error
    assert fine.names == ["loss"]


def test_no_collapse_warning_when_max_skips_stops_the_search_in_its_warm_up(tmp_path, capsys):
    # alpha never moved (its random start decides the genotype): nothing to say about a collapse
    run = tmp_path / "run"
    assert cli.main(["search", *NAN_ARGS, "--epochs", "3", "--warmup-epochs", "2", "--ops", "skip_connect",
                     "--max-skips", "1", "--run-dir", str(run)]) == 0
    err = capsys.readouterr().err.replace("\r", "\n")
    assert "early stop at epoch 1" in err and "collapse" not in err


def test_a_second_ctrl_c_stops_at_once_and_says_how_to_resume_from_the_last_checkpoint(tmp_path, monkeypatch, capsys):
    """It ended with a bare `diffnas: interrupted`, though the checkpoint of the last epoch was there."""
    real, calls = search_mod.search_step, [0]

    def step(*args, **kwargs):
        calls[0] += 1
        if calls[0] == TINY["max_steps"] + 2:   # in epoch 2: Ctrl-C, and again before the step ends
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(search_mod, "search_step", step)
    run = tmp_path / "run"
    assert cli.main(["search", *TINY_ARGS, "--run-dir", str(run)]) == 130
    err = capsys.readouterr().err
    assert (f"diffnas: stopped at once, without saving; its last checkpoint is kept; resume with: diffnas search "
            f"--resume {run}\n") in err and err.endswith("diffnas: interrupted\n")
    assert saved(run)["epoch"] == 1


def test_resuming_a_complete_run_rewrites_no_file(tmp_path, reference, capsys):
    """It rewrote metrics.jsonl, genotypes.jsonl and genotype.json with the same bytes, so on read-only
    storage the 'complete, nothing to do' resume failed on a temporary file."""
    run = Path(shutil.copytree(reference, tmp_path / "run"))
    before = {p.name: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    time.sleep(0.01)
    assert cli.main(["search", "--resume", str(run)]) == 0
    assert "is complete" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()} == before


def test_the_resume_line_quotes_a_folder_name_for_the_shell(tmp_path):
    """`resume with: diffnas train --resume runs/run é 1` broke when pasted into a shell."""
    from diffnas.loop import resume_line

    spaced = tmp_path / "run é 1"
    line = resume_line("search", spaced, None, False)
    assert shlex.split(line.split(": ", 1)[1]) == ["diffnas", "search", "--resume", str(spaced)]
    plain = tmp_path / "plain"
    assert resume_line("search", plain, None, False) == f"resume with: diffnas search --resume {plain}"
    assert shlex.split(resume_line("train", spaced, spaced, False).split(": ", 1)[1])[-1] == str(spaced)


def _pasted(err: str) -> list[list[str]]:
    """Each `diffnas ...` command a message quotes, as the shell would split it when pasted."""
    return [shlex.split(c) for c in re.findall(r"`(diffnas [^`]*)`", err)]


def test_commands_in_messages_quote_paths_for_the_shell(tmp_path, reference, capsys):
    """Messages printed `diffnas download cifar10 --data-dir /my data` and `diffnas search --resume
    runs/my run`: pasted, the shell split the folder in two."""
    spaced = tmp_path / "my data"
    assert cli.main(["search", "--dataset", "cifar10", "--data-dir", str(spaced)]) == 2
    assert ["diffnas", "download", "cifar10", "--data-dir", str(spaced)] in _pasted(capsys.readouterr().err)

    run = Path(shutil.copytree(reference, tmp_path / "my run"))
    assert cli.main(["search", *TINY_ARGS, "--run-dir", str(run)]) == 2   # a folder holding a run already
    assert ["diffnas", "search", "--resume", str(run)] in _pasted(capsys.readouterr().err)
    assert cli.main(["train", "--resume", str(run)]) == 2   # a search folder given to train
    pasted = _pasted(capsys.readouterr().err)
    assert ["diffnas", "train", "--genotype", str(run)] in pasted
    assert ["diffnas", "search", "--resume", str(run)] in pasted


def test_flag_values_and_dash_folders_in_messages_paste_into_a_shell(tmp_path):
    """`pass --data-dir /my data` split in two when pasted; `diffnas search --resume -dash` took the
    folder for a flag."""
    from diffnas.loop import resume_line
    from diffnas.notices import option

    with command_line():
        assert shlex.split(option("data_dir", str(tmp_path / "my data"))) == ["--data-dir", str(tmp_path / "my data")]
        assert option("data_dir", "DIR") == "--data-dir DIR" and option("w_lr", 0.1) == "--w-lr 0.1"
    assert resume_line("search", Path("-dash"), None, False) == "resume with: diffnas search --resume ./-dash"


# ---------------------------------------------------------------------------------------------
# one writer per run folder


def test_a_new_run_in_a_folder_another_process_writes_is_told_it_is_in_use(tmp_path, capsys):
    """A new search, training or pipeline given the folder of a run another process is writing said
    "holds a run already; continue it with --resume", and that resume is refused as in use."""
    from diffnas.runfolder import lock_run_dir

    run = tmp_path / "run"
    assert cli.main(["search", "--dry-run", "--no-plots", "--run-dir", str(run)]) == 0
    held = lock_run_dir(run)
    try:
        for command in (["search", "--dry-run"], ["train", "--dry-run"], ["run", "--dry-run"]):
            capsys.readouterr()
            assert cli.main([*command, "--no-plots", "--run-dir", str(run)]) == 2
            err = capsys.readouterr().err
            assert "in use by another diffnas process" in err and "--resume" not in err, (command, err)
    finally:
        os.close(held)
    assert cli.main(["search", "--dry-run", "--no-plots", "--run-dir", str(run)]) == 2   # let go: the old message
    assert "holds a run already; continue it with" in capsys.readouterr().err
    # a pipeline's folder: its stage writing search/ (or train/) holds that folder's lock, not the pipeline's
    pipe = tmp_path / "pipe"
    (pipe / "search").mkdir(parents=True)
    (pipe / "config.json").write_text(json.dumps({"command": "pipeline"}))
    held = lock_run_dir(pipe / "search")
    try:
        for command in ("run", "search"):
            assert cli.main([command, "--dry-run", "--no-plots", "--run-dir", str(pipe)]) == 2
            err = capsys.readouterr().err
            assert f"{pipe}: in use by another diffnas process" in err and "--resume" not in err, (command, err)
    finally:
        os.close(held)
    # a second `run --resume` while the first trains: refused at its start, before "search is complete"
    finished = tmp_path / "finished"
    assert cli.main(["run", "--dry-run", "--no-plots", "--run-dir", str(finished)]) == 0
    capsys.readouterr()
    held = lock_run_dir(finished / "train")
    try:
        assert cli.main(["run", "--resume", str(finished)]) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith(f"diffnas: error: {finished}: in use by another diffnas process")
    finally:
        os.close(held)


def test_a_run_folder_in_use_by_another_process_is_refused_and_left_alone(tmp_path, monkeypatch):
    """Two processes on one folder (a resume started twice, one --run-dir given twice) interleaved
    their rows; the second is now refused at the start, and the folder it found is not removed."""
    from diffnas.errors import ConfigError
    from diffnas.runfolder import lock_run_dir

    run = tmp_path / "run"
    cfg = search_config("darts-1st", **{**TINY, "epochs": 1}, plots=False, run_dir=str(run))
    run.mkdir()
    held = lock_run_dir(run)   # another process's lock: flock conflicts across open() calls
    assert held is not None
    try:
        with pytest.raises(ConfigError, match=f"{run}: in use by another diffnas process"):
            search(cfg)
        assert run.is_dir() and not any(run.iterdir())
    finally:
        os.close(held)
    result = search(cfg)   # released: the run goes, and leaves the folder unlocked when it returns
    assert [row["epoch"] for row in result.metrics] == [1]
    os.close(lock_run_dir(run))
    with pytest.raises(ConfigError, match="in use by another diffnas process"):
        held = lock_run_dir(run)
        try:
            search(cfg, resume=str(run))
        finally:
            os.close(held)

    def fail(*args, **kwargs):
        raise RuntimeError("boom")

    cfg2 = dataclasses.replace(cfg, run_dir=str(tmp_path / "run2"), epochs=2)
    monkeypatch.setattr(importlib.import_module("diffnas.search"), "search_step", fail)
    with pytest.raises(RuntimeError, match="boom"):
        search(cfg2)
    os.close(lock_run_dir(tmp_path / "run2"))   # an error mid-run lets go of the folder too


def test_a_nan_before_the_first_checkpoint_in_a_pipeline_says_how_to_retry_it(tmp_path):
    """The hint said to remove the stage's folder: for a pipeline's search that left a pipeline whose
    resume refuses another learning rate (and repeats the NaN); its training is retried by resuming the
    pipeline once train/ is gone."""
    from diffnas.recovery import _start_anew

    pipeline = tmp_path / "p"
    (pipeline / "search").mkdir(parents=True)
    (pipeline / "config.json").write_text('{"command": "pipeline"}')
    assert _start_anew(pipeline / "search") == (f"start a new pipeline with a lower learning rate: remove {pipeline} "
                                                f"or name another run_dir")
    assert _start_anew(pipeline / "train").startswith(f"remove {pipeline / 'train'} and resume the pipeline with a "
                                                      f"lower lr (`diffnas run --resume {pipeline} ...`)")
    assert _start_anew(tmp_path / "s") == (f"start it anew with a lower learning rate: remove {tmp_path / 's'} or "
                                           f"name another run_dir")


def _tensorboard_scalars(folder: Path) -> dict[tuple[str, int], float]:
    """{(tag, step): value} of every events file in `folder`, read as TensorBoard reads them: TFRecords
    (length, its CRC, the Event, its CRC) of Event protocol buffers."""
    import struct

    from tensorboardX.proto.event_pb2 import Event

    out = {}
    for path in sorted(folder.iterdir()):
        data, at = path.read_bytes(), 0
        while at + 12 <= len(data):
            (length,) = struct.unpack("<Q", data[at:at + 8])
            event = Event.FromString(data[at + 12:at + 12 + length])
            at += 12 + length + 4
            for value in event.summary.value:
                out[value.tag, event.step] = value.simple_value
    return out


def test_an_epochs_tensorboard_scalars_are_on_disk_when_its_metrics_are(tmp_path):
    """A SIGKILL after an epoch was saved lost its TensorBoard scalars: tensorboardX's flush leaves the
    events queued for its writer thread. The process here is not ended: the files are read as a kill
    would leave them, before any close."""
    from diffnas.runlog import RunLog

    log = RunLog(tmp_path, tensorboard=True)
    for epoch in (1, 2, 10):
        log.metrics({"epoch": epoch, "train_loss": 1.0 / epoch, "val_acc": 0.1 * epoch}, epoch)
        scalars = _tensorboard_scalars(tmp_path / "tb")
        assert scalars[("train_loss", epoch)] == pytest.approx(1.0 / epoch)
    files = sorted(p.name for p in (tmp_path / "tb").iterdir())
    assert [int(name.rsplit(".", 1)[1]) for name in files] == [1, 2, 10]   # in step order, as TensorBoard reads
    log.close()


def test_a_write_refused_mid_run_says_the_checkpoint_is_kept_and_how_to_resume(tmp_path, monkeypatch, capsys):
    """A run folder turned read-only during epoch 2 ended with the OS's error alone, though the
    checkpoint of epoch 1 was kept and a resume works."""
    import errno

    from diffnas.runlog import RunLog

    real, rows = RunLog.append_jsonl, []

    def refused_at_epoch_2(self, name, obj):
        if name == "metrics.jsonl":
            rows.append(obj)
            if len(rows) == 2:
                raise OSError(errno.EROFS, "Read-only file system", str(self.run_dir / name))
        return real(self, name, obj)

    monkeypatch.setattr(RunLog, "append_jsonl", refused_at_epoch_2)
    run = tmp_path / "run"
    assert cli.main(["search", "--preset", "darts-1st", "--dataset", "synthetic", "--layers", "3", "--channels", "4",
                     "--nodes", "2", "--batch-size", "8", "--epochs", "3", "--max-steps", "1", "--no-plots",
                     "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-2] == (f"diffnas: the run could not write its files in {run}; its last checkpoint is kept; once it "
                       f"can, resume with: diffnas search --resume {run}")
    assert err[-1] == f"diffnas: error: {run / 'metrics.jsonl'}: Read-only file system"
    monkeypatch.setattr(RunLog, "append_jsonl", real)
    assert cli.main(["search", "--resume", str(run)]) == 0
    assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    # refused before the first checkpoint (a full disk, `ulimit -f`): the OS's "[Errno 27] File too large" alone
    rows.clear()
    monkeypatch.setattr(RunLog, "append_jsonl", lambda self, name, obj: (_ for _ in ()).throw(
        OSError(errno.EFBIG, "File too large")) if name == "metrics.jsonl" else real(self, name, obj))
    first = tmp_path / "first"
    assert cli.main(["search", "--preset", "darts-1st", "--dataset", "synthetic", "--layers", "3", "--channels", "4",
                     "--nodes", "2", "--batch-size", "8", "--epochs", "3", "--max-steps", "1", "--no-plots",
                     "--run-dir", str(first)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-2:] == [f"diffnas: the run could not write its files in {first}; no epoch was saved yet; once it can, "
                        f"resume with: diffnas search --resume {first}", "diffnas: error: [Errno 27] File too large"]
    monkeypatch.setattr(RunLog, "append_jsonl", real)
    assert cli.main(["search", "--resume", str(first)]) == 0   # starts it over
    assert [json.loads(line)["epoch"] for line in (first / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]


def test_a_checkpoints_gpu_random_states_resume_on_a_machine_with_fewer_gpus(monkeypatch):
    """rng_state saves one state per GPU the process saw; set_rng_state_all on a machine with fewer GPUs
    (a run of 8, resumed on 1) failed at the first one missing. Faked here: no GPU on this machine."""
    saved = checkpoint.rng_state()
    states = [torch.full((16,), i, dtype=torch.uint8) for i in range(8)]   # what 8 GPUs' generators held
    restored = {}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: restored.__setitem__(device, state))
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda states: [restored.__setitem__(i, s)
                                                                         for i, s in enumerate(states)])
    checkpoint.set_rng_state({**saved, "cuda": states})
    assert list(restored) == [0] and torch.equal(restored[0], states[0])
