"""Ctrl-C while the `diffnas` command starts (importing torch takes seconds): one line
"diffnas: interrupted", exit code 130, no traceback, through both entry points: the console script
(`diffnas = "diffnas.cli:main"`, whose wrapper imports diffnas.cli before calling main) and
`python -m diffnas`. Both import the package diffnas first, so it must not import torch itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
# what pip's generated `diffnas` script does (less its argv[0] clean-up)
CONSOLE_SCRIPT = "import sys; from diffnas.cli import main; sys.exit(main())"
ENTRIES = {"console-script": ["-c", CONSOLE_SCRIPT], "python -m diffnas": ["-m", "diffnas"]}
ARGS = ["params", "--preset", "darts"]

# stand-ins for torch whose import is where Ctrl-C lands, whoever imports it first
FAKE_TORCH = {
    "plain": """\
import os, signal, time
os.kill(os.getpid(), signal.SIGINT)
time.sleep(30)
raise SystemExit("the SIGINT did not interrupt the import of torch")
""",
    # a KeyboardInterrupt inside pybind11 code ends in std::terminate (seen with the real torch)
    "aborts": """\
import os, signal, time
try:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(30)
except KeyboardInterrupt:
    os.abort()
""",
}

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def start(entry: str, pythonpath: list[Path], *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, pythonpath))}
    return subprocess.Popen([sys.executable, *ENTRIES[entry], *ARGS, *extra], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def assert_interrupted(proc: subprocess.Popen, traceback: bool = False) -> str:
    out, err = proc.communicate(timeout=60)
    assert ("Traceback" in err) == traceback, err
    assert proc.returncode == 130, (proc.returncode, out, err)
    assert err.splitlines()[-1:] == ["diffnas: interrupted"], err
    return err


def fake_torch(folder: Path, kind: str = "plain") -> Path:
    (folder / "torch").mkdir()
    (folder / "torch" / "__init__.py").write_text(FAKE_TORCH[kind])
    return folder


@pytest.mark.parametrize("entry", ENTRIES)
def test_sigterm_while_torch_is_imported_is_said(tmp_path, entry):
    """SIGTERM in the first seconds (a scheduler's cancel) ended the command with 143 and not a word."""
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text(FAKE_TORCH["plain"].replace("SIGINT", "SIGTERM"))
    proc = start(entry, [tmp_path, ROOT])
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    assert err.splitlines()[-1:] == ["diffnas: terminated (SIGTERM)"] and "Traceback" not in err, err


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("kind", FAKE_TORCH)
def test_ctrl_c_while_torch_is_imported(tmp_path, entry, kind):
    """Deterministic: the SIGINT arrives inside `import torch`, wherever that import happens."""
    assert_interrupted(start(entry, [fake_torch(tmp_path, kind), ROOT]))


def test_ctrl_c_while_torch_is_imported_with_debug_shows_where(tmp_path):
    err = assert_interrupted(start("python -m diffnas", [fake_torch(tmp_path), ROOT], "--debug"), traceback=True)
    assert "torch/__init__.py" in err and "KeyboardInterrupt" in err


def torch_loading(pid: int) -> bool:
    """Whether the process has started importing torch (its shared library is mapped)."""
    try:
        return "libtorch" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc to see torch being loaded")
@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("delay", [0.0, 0.25])
def test_ctrl_c_during_the_real_startup(entry, delay):
    """The real torch: SIGINT `delay` seconds after torch's library is loaded, while its Python
    modules are still being imported."""
    proc = start(entry, [ROOT])
    deadline = time.time() + 60
    while not torch_loading(proc.pid) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    time.sleep(delay)
    assert proc.poll() is None, "the command finished before the SIGINT; nothing was tested"
    proc.send_signal(signal.SIGINT)
    assert_interrupted(proc)


def test_the_first_ctrl_c_in_a_loop_says_at_once_what_happens_and_the_second_stops_at_once(capfd, monkeypatch):
    from diffnas.signals import stop_on_signals

    monkeypatch.delenv("RANK", raising=False)
    with stop_on_signals() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.signum == signal.SIGINT
        assert capfd.readouterr().err == ("\ndiffnas: stopping after this step to save a checkpoint (Ctrl-C again: "
                                          "stop at once, without saving)\n")
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    monkeypatch.setenv("RANK", "1")   # torchrun's other ranks stay quiet
    with stop_on_signals() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.signum == signal.SIGINT and capfd.readouterr().err == ""


def test_ctrl_c_while_matplotlib_loads_for_a_finished_runs_figures_is_the_drawings_stop(tmp_path, monkeypatch,
                                                                                         capsys):
    """The figures' first step, importing diffnas.run_figures (matplotlib: a second or so), is inside the
    drawing's stop handling: a Ctrl-C there keeps the finished run and says how to draw later (it was a
    bare 'interrupted', the result never printed)."""
    import importlib.abc

    from diffnas import runlog

    class CtrlCOnImport(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "diffnas.run_figures":
                raise KeyboardInterrupt
            return None

    monkeypatch.delitem(sys.modules, "diffnas.run_figures", raising=False)
    monkeypatch.setattr(sys, "meta_path", [CtrlCOnImport(), *sys.meta_path])
    assert runlog.draw_figures(tmp_path) == 130
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"diffnas: interrupted while drawing the figures; the run is complete; draw them with "
        f"`diffnas plot {tmp_path}`")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_the_process_was_started_ignoring_stays_ignored_in_loops_and_drawing(sig):
    """`diffnas search ... &` in a script starts with SIGINT ignored (the script's Ctrl-C is not for its
    background jobs): the loop put its own handler in and stopped the search on the script's Ctrl-C."""
    from diffnas.signals import stop_on_signals, terminate_raises

    before = signal.signal(sig, signal.SIG_IGN)
    try:
        with stop_on_signals() as stop:
            os.kill(os.getpid(), sig)
            time.sleep(0.01)
            assert not stop and signal.getsignal(sig) is signal.SIG_IGN
        with terminate_raises():
            os.kill(os.getpid(), sig)
            time.sleep(0.01)
            assert signal.getsignal(sig) is signal.SIG_IGN
        assert signal.getsignal(sig) is signal.SIG_IGN
    finally:
        signal.signal(sig, before)


def test_a_handler_set_outside_python_is_put_back_as_the_default(monkeypatch):
    """signal.getsignal gives None for a handler an embedding program set in C; putting None back
    raised TypeError as the loop ended."""
    from diffnas.signals import stop_on_signals

    real = signal.signal
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    put: list[int] = []

    def from_c(sig, handler):   # the loop's setting of each signal returns None, as for a C handler
        previous = real(sig, handler)
        return previous if put else None

    monkeypatch.setattr(signal, "signal", from_c)
    try:
        with stop_on_signals():
            put.append(1)
        assert all(signal.getsignal(sig) is signal.SIG_DFL for sig in before)
    finally:
        for sig, handler in before.items():
            real(sig, handler)


def test_sigterm_while_a_run_sets_up_removes_its_new_folder_and_says_so(tmp_path, monkeypatch, capsys):
    """SIGTERM outside the loops (here: just after config.json was written) ended the process without a
    word and left a half-made run folder behind; it now unwinds like Ctrl-C: the new folder is removed,
    one line says what happened, exit 128 + 15."""
    from diffnas import cli, fastpath

    real = fastpath.step_function

    def term_then_build(*args, **kwargs):
        assert (tmp_path / "run" / "config.json").is_file()   # the folder is being made
        os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(fastpath, "step_function", term_then_build)
    before = signal.getsignal(signal.SIGTERM)
    code = cli.main(["search", "--preset", "darts-1st", "--dataset", "synthetic", "--layers", "3", "--channels", "4",
                     "--nodes", "2", "--batch-size", "8", "--epochs", "1", "--max-steps", "1", "--no-plots",
                     "--run-dir", str(tmp_path / "run")])
    assert code == 128 + signal.SIGTERM
    assert capsys.readouterr().err.splitlines()[-1] == "diffnas: terminated (SIGTERM)"
    assert not (tmp_path / "run").exists()
    assert signal.getsignal(signal.SIGTERM) is before   # the command put the handler back


def test_sigterm_whose_exception_python_drops_in_a_gc_callback_still_stops_the_drawing(tmp_path, monkeypatch,
                                                                                       capsys):
    """A SIGTERM handled while a __del__ ran (matplotlib's weakref callbacks, during garbage collection):
    Python printed "Exception ignored in ..." and dropped the Terminated, and the run exited 0 as if
    never stopped (1 in 6 tries of a review)."""
    import gc

    from diffnas import run_figures, runlog

    class Finaliser:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)   # the handler runs here, inside __del__

    def plot_run(run_dir):
        Finaliser()
        gc.collect()

    from diffnas.signals import Terminated

    dropped = []
    monkeypatch.setattr(run_figures, "plot_run", plot_run)
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: dropped.append(unraisable.exc_type))
    assert runlog.draw_figures(tmp_path) == 128 + signal.SIGTERM
    assert dropped == [Terminated]   # the case this is about: Python dropped the exception
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (f"diffnas: stopped while drawing the figures; the run is complete; draw them "
                                    f"with `diffnas plot {tmp_path}`")


@pytest.mark.parametrize("command", ["search", "run"])
def test_sigterm_while_the_run_folder_is_being_made_leaves_no_folder(tmp_path, monkeypatch, capsys, command):
    """The folder is made, locked and tensorboardX imported (half a second) before the run's start is
    guarded: a SIGTERM there left an empty run folder (a pipeline: its config.json and an empty search/)."""
    from diffnas import cli, runlog

    real = runlog.lock_run_dir

    def lock_then_term(path):
        fd = real(path)
        os.kill(os.getpid(), signal.SIGTERM)
        return fd

    monkeypatch.setattr(runlog, "lock_run_dir", lock_then_term)
    tiny = ["--preset", "darts-1st", "--dataset", "synthetic", "--layers", "3", "--channels", "4", "--nodes", "2",
            "--batch-size", "8", "--epochs", "1", "--max-steps", "1", "--no-plots"]
    train = ["--train-layers", "3", "--train-channels", "4", "--train-epochs", "1", "--train-batch-size", "8",
             "--train-max-steps", "1"] if command == "run" else []
    assert cli.main([command, *tiny, *train, "--run-dir", str(tmp_path / "new" / "run")]) == 128 + signal.SIGTERM
    assert capsys.readouterr().err.splitlines()[-1] == "diffnas: terminated (SIGTERM)"
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("command", ["search", "train"])
def test_sigterm_after_the_run_said_its_data_leaves_no_folder(tmp_path, monkeypatch, capsys, command):
    """Between the run's start (config.json written) and its loop the run printed its data line and
    notices unguarded: a stop there left a folder of a config.json and no word on how to go on. The
    run has computed nothing then, so its new folder is removed as for a stop while it was opening."""
    import importlib

    from diffnas import cli

    module = importlib.import_module(f"diffnas.{command}")
    real = module.describe

    def describe_then_term(ds):
        assert (tmp_path / "run" / "config.json").is_file()
        os.kill(os.getpid(), signal.SIGTERM)
        return real(ds)

    monkeypatch.setattr(module, "describe", describe_then_term)
    tiny = ["--dataset", "synthetic", "--layers", "3", "--channels", "4", "--batch-size", "8", "--epochs", "1",
            "--max-steps", "1", "--no-plots", "--run-dir", str(tmp_path / "run")]
    what = ["--preset", "darts-1st", "--nodes", "2"] if command == "search" else ["--genotype", "DARTS_V2"]
    assert cli.main([command, *what, *tiny]) == 128 + signal.SIGTERM
    assert capsys.readouterr().err.splitlines()[-1] == "diffnas: terminated (SIGTERM)"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("where", ["validation", "curves"])
def test_the_first_ctrl_c_says_what_a_stop_does_where_the_loop_is(tmp_path, monkeypatch, capfd, where):
    """It always said "stopping after this step (a validation or test pass: at once) to save a
    checkpoint", also once the epoch was saved and the run was drawing its curves or figures (a
    review's Ctrl-C there read as if a step and a checkpoint were still to come)."""
    import importlib

    search_module = importlib.import_module("diffnas.search")   # `diffnas.search` is the function
    monkeypatch.delenv("RANK", raising=False)
    real_score, real_curves = search_module.score_supernet, search_module._plot_curves

    def interrupt(real):
        def call(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
            return real(*args, **kwargs)
        return call

    if where == "validation":
        monkeypatch.setattr(search_module, "score_supernet", interrupt(real_score))
    else:
        monkeypatch.setattr(search_module, "_plot_curves", interrupt(real_curves))
    from diffnas import search, search_config

    run = tmp_path / "run"
    result = search(search_config("darts-1st", dataset="synthetic", layers=3, channels=4, nodes=2, batch_size=8,
                                  epochs=2, max_steps=1, plots=where == "curves", run_dir=str(run)),
                    raise_on_stop=False)
    err = capfd.readouterr().err
    if where == "validation":
        assert ("diffnas: stopping this validation pass now; the epoch's steps are saved for the resume "
                "(Ctrl-C again: stop at once, without saving)") in err
        assert "interrupted at epoch 1 during validation" in err
    else:
        assert "diffnas: stopping: the epoch is saved (Ctrl-C again: stop at once)" in err
        assert "interrupted after epoch 1; checkpoint saved" in err
    assert "stopping after this step" not in err and result.exit_code == 130
