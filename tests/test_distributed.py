"""Data-parallel search and training under torchrun: 2 processes, gloo, CPU.

Two launches do all the distributed work (a torchrun start costs seconds): a search killed with
SIGKILL after its first checkpoint, then tests/distributed_worker.py running every job and saving
each rank's final in-memory state. The single-process runs that the ranks must equal run here,
with bn_groups=2 (each half of the batch normalised on its own, as each rank does on CPU).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import distributed_worker as worker
from formats_fixtures import write_image_folder
from diffnas import cli, distributed
from diffnas import genotype as G
from diffnas.config import search_config
from diffnas.errors import ConfigError

pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or sys.platform != "linux",
                                reason="needs torch.distributed with gloo, and /proc to find the workers")

TESTS = Path(__file__).parent
ROOT = TESTS.parent
MODES = ["first", "second-fd", "second-exact", "one-level", "dnas", "train"]
JOBS = MODES + ["ref", "resume", "sigterm", "cli-run", *worker.NOTICE_JOBS]
# the "ref" search job on the command line
REF_FLAGS = ["--preset", "darts", "--order", "first", "--dataset", "synthetic", "--layers", "3", "--channels", "4",
             "--nodes", "2", "--batch-size", "8", "--epochs", "3", "--max-steps", "2", "--warmup-epochs", "0",
             "--deterministic", "--no-plots"]


def torchrun(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)]),
           **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             *args], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (torchrun's workers live in sessions of their own)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


# `diffnas` whose first checkpoint save, once written, touches a marker and hangs (the other rank
# waits at the barrier after it): the kill lands after epoch 1 whatever the machine's speed
HANG_AFTER_FIRST_SAVE = """
import os, sys, time
import diffnas.checkpoint as ck

real_save, marker = ck.save, os.environ["FAULT_MARKER"]


def save(*args, **kwargs):
    real_save(*args, **kwargs)
    open(marker, "w").close()
    time.sleep(600)


ck.save = save
from diffnas.cli import main
sys.exit(main())
"""


def kill_after_first_checkpoint(home: Path) -> Path:
    """`torchrun diffnas search` in `home` (default run folder), SIGKILLed, workers and launcher,
    once its first checkpoint is written; returns the run folder."""
    home.mkdir()
    script, marker = home / "hang_after_first_save.py", home / "saved"
    script.write_text(HANG_AFTER_FIRST_SAVE)
    proc = torchrun(str(script), "search", *REF_FLAGS, cwd=home, env={"FAULT_MARKER": str(marker)})
    deadline = time.time() + 240
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    for pid in children(proc.pid) + [proc.pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    output = proc.communicate()[0]
    folders = list((home / "runs").iterdir())
    assert len(folders) == 1, output[-3000:]   # the ranks agreed on the default run folder
    assert (folders[0] / "checkpoint.pt").is_file(), output[-3000:]
    return folders[0]


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    start = time.time()
    killed = kill_after_first_checkpoint(out / "killed")
    killed_at = torch.load(killed / "checkpoint.pt", weights_only=True)["state"]["epoch"]
    # for the notice jobs: an image folder with a stray file, a one-process run to resume with two
    write_image_folder(out / "images", per_class=10, size=(8, 8))
    (out / "images" / "train" / "dog" / "notes.txt").write_text("not an image")
    worker.search_mod.search(worker.search_cfg("first", out / "one"))
    proc = torchrun(str(TESTS / "distributed_worker.py"), str(out), *JOBS)
    output = proc.communicate(timeout=540)[0]
    (out / "torchrun.log").write_text(output)
    assert proc.returncode == 0, output[-5000:]
    print(f"torchrun launches: {time.time() - start:.1f} s", file=sys.stderr)
    states = {(job, r): torch.load(out / "states" / f"{job}-rank{r}.pt", weights_only=False)
              for job in JOBS for r in (0, 1)}
    return out, states, (killed, killed_at)


def assert_states(a: dict, b: dict, atol: float = 0.0, rtol: float = 0.0) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=atol, rtol=rtol, msg=k)


def test_ranks_hold_identical_weights_and_alphas(launched):
    _, states, _ = launched
    for job in JOBS:
        a, b = states[job, 0], states[job, 1]
        assert a["world"] == b["world"] == 2
        assert_states(a["state"], b["state"])   # bitwise: weights, BN buffers, alpha
        if "history" in a:
            torch.testing.assert_close(a["history"], b["history"], rtol=0, atol=0)


@pytest.mark.parametrize("job", MODES)
def test_two_ranks_equal_one_process_over_the_global_batch(launched, tmp_path, job):
    _, states, _ = launched
    ranks = states[job, 0]
    capture = worker.Capture()
    try:
        if job in worker.SEARCH_JOBS:
            single = worker.search_mod.search(worker.search_cfg(job, tmp_path, bn_groups=2))
            torch.testing.assert_close(single.history, ranks["history"], atol=1e-6, rtol=1e-5)
        else:
            single = worker.train_mod.train(worker.train_cfg(job, tmp_path, bn_groups=2))
        assert_states(capture.state(), ranks["state"], atol=2e-6, rtol=1e-5)
        for row, ranks_row in zip(single.metrics, ranks["metrics"], strict=True):
            for key in ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc"):
                if key in row:
                    assert row[key] == pytest.approx(ranks_row[key], rel=1e-5), key
    finally:
        capture.restore()
    # the run moved the weights and alpha: the comparison is not between two initial states
    initial = ranks["initial"]
    assert any(not torch.allclose(v, ranks["state"][k], atol=1e-4) for k, v in initial.items()
               if v.is_floating_point() and "running" not in k and k.startswith("0."))
    if job in worker.SEARCH_JOBS:
        assert any(not torch.allclose(v, ranks["state"][k], atol=1e-5) for k, v in initial.items()
                   if k.startswith("1."))


def test_bn_groups_1_would_differ(launched, tmp_path):
    """The comparison above has teeth: global-batch statistics in one process give other weights."""
    _, states, _ = launched
    capture = worker.Capture()
    try:
        worker.search_mod.search(worker.search_cfg("first", tmp_path, bn_groups=1))
        state = capture.state()
    finally:
        capture.restore()
    worst = max((state[k] - states["first", 0]["state"][k]).abs().max().item() for k in state
                if state[k].is_floating_point())
    assert worst > 1e-3


def test_only_rank_0_writes(launched):
    out, states, _ = launched
    ref = out / "ref"
    assert sorted(p.name for p in ref.iterdir()) == ["alphas.pt", "checkpoint.pt", "config.json", "genotype.json",
                                                     "genotypes.jsonl", "metrics.jsonl", "sessions.jsonl", "tb"]
    # one record of what ran the run, saying both processes
    (session,) = [json.loads(line) for line in (ref / "sessions.jsonl").read_text().splitlines()]
    assert session["processes"] == 2 and session["device"] == "cpu"
    rows = [json.loads(line) for line in (ref / "metrics.jsonl").read_text().splitlines()]
    assert len(list((ref / "tb").iterdir())) == len(rows)   # one TensorBoard events file an epoch, rank 0's
    assert [r["epoch"] for r in rows] == [1, 2, 3]            # one row per epoch, not one per rank
    assert len((ref / "genotypes.jsonl").read_text().splitlines()) == 3
    assert json.loads((ref / "config.json").read_text())["bn_groups"] == 2
    # diffnas run --dry-run: search, then training of the found cell, summary by rank 0, in the one
    # default run folder the ranks agreed on
    (run,) = (out / "cli-run" / "runs").iterdir()
    assert (run / "summary.json").is_file() and (run / "train" / "result.json").is_file()
    # the training's bn_groups as resolved for 2 CPU processes, saved before the search: a resume in
    # one process trains with the same statistics (the saved auto was resolved anew to 1)
    assert json.loads((run / "config.json").read_text())["train"]["bn_groups"] == 2
    trained = (run / "train" / "metrics.jsonl").read_text().splitlines()
    assert len(list((run / "train" / "tb").iterdir())) == len(trained)
    assert [states["cli-run", r]["code"] for r in (0, 1)] == [0, 0]
    # its cost counts both processes (an hour of 2 processes is 2 device-hours), as summary.json says it
    result = json.loads((run / "train" / "result.json").read_text())
    assert result["device_seconds"] == pytest.approx(2 * result["seconds"]) and result["seconds"] > 0
    assert json.loads((run / "summary.json").read_text())["train_cpu_hours"] * 3600 == pytest.approx(
        result["device_seconds"])


def test_each_notice_is_printed_once(launched):
    """Every rank loads the data, resumes, rolls back; rank 0 alone says so."""
    out, _, (killed, _) = launched
    log = (out / "torchrun.log").read_text()
    notices = [
        f"diffnas: {out / 'images' / 'train'}: left out 1 entry that",           # the stray file
        "diffnas: warning: bn_groups 1 cannot be used with 2 processes",         # resume-one
        "diffnas: epochs changed from 1 to 2",
        f"diffnas: resuming {out / 'one'} at epoch 2",
        "diffnas: non-finite loss at epoch 2 step 1; rolled back to the start of epoch 2",   # nan
        f"diffnas: resuming {killed} at epoch",                                  # resume
        "diffnas: interrupted at epoch 2 step 1; checkpoint saved",              # sigterm
        f"diffnas: resuming {out / 'sigterm'} at epoch 2 step 1",
    ]
    for notice in notices:
        assert log.count(notice) == 1, (notice, log[-5000:])


def test_is_main_before_setup_goes_by_torchruns_rank(monkeypatch):
    """What runs before the process group exists (argument checks, notes) is gated too."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert not distributed.is_main() and distributed.rank_world() == (0, 1)
    monkeypatch.setenv("RANK", "0")
    assert distributed.is_main()
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.setenv("RANK", "1")
    assert distributed.is_main()                              # not torchrun's: one process


def test_a_one_process_command_under_torchrun_runs_on_rank_0_only(monkeypatch, capsys):
    """`torchrun --nproc_per_node 2 -m diffnas evaluate RUN` printed its result twice, and `report` wrote
    report.html from both processes at once."""
    from diffnas import cli

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert cli.main(["params", "--json"]) == 0
    assert capsys.readouterr() == ("", "")
    monkeypatch.setenv("RANK", "0")
    assert cli.main(["params", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["network"] == "search"
    assert err == ("diffnas: params runs in one process: under torchrun rank 0 runs it and the others do nothing "
                   "(only search, train, run share their work)\n")


@pytest.mark.parametrize("argv", [["--version"], ["search", "--help"], ["train", "-h"], ["--vers"], ["run", "--hel"]])
def test_help_and_version_under_torchrun_are_printed_by_rank_0_alone(argv, monkeypatch, capsys):
    """`torchrun --nproc_per_node 2 -m diffnas --version` printed the versions twice (review); argparse's
    abbreviations too."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank in ("1", "0"):
        monkeypatch.setenv("RANK", rank)
        assert cli.main(argv) == 0
        out = capsys.readouterr().out
        assert (out == "") == (rank == "1"), (rank, out)


def test_killed_run_resumes_to_the_uninterrupted_result(launched):
    _, states, (killed, killed_at) = launched
    assert killed_at == 1                                     # killed mid-way, after the checkpoint of epoch 1
    for r in (0, 1):
        assert_states(states["resume", r]["state"], states["ref", 0]["state"])
        torch.testing.assert_close(states["resume", r]["history"], states["ref", 0]["history"], rtol=0, atol=0)
    rows = [json.loads(line) for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]


def test_sigterm_to_one_rank_stops_all_at_the_same_step_and_resumes_exactly(launched):
    """Weights and alpha bitwise; the BN running statistics, averaged over the ranks at the stop
    rather than at the end of the epoch, to rounding (the running average is linear)."""
    out, states, _ = launched
    ref = states["ref", 0]["state"]
    for r in (0, 1):
        assert states["sigterm", r]["cut_interrupted"]
        state = states["sigterm", r]["state"]
        assert_states({k: v for k, v in state.items() if "running" not in k},
                      {k: v for k, v in ref.items() if "running" not in k})
        assert_states(state, ref, atol=1e-6, rtol=1e-6)
    ref_rows = (out / "ref" / "metrics.jsonl").read_text().splitlines()
    rows = (out / "sigterm" / "metrics.jsonl").read_text().splitlines()
    for a, b in zip(rows, ref_rows, strict=True):   # the ranks' sums of epoch 2 survive the stop
        a, b = json.loads(a), json.loads(b)
        assert a["train_loss"] == b["train_loss"]
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-6)


def test_two_rank_run_resumes_in_one_process(launched):
    """Stopped mid-epoch with 2 ranks, resumed by 1 process (the saved bn_groups=2 keeps the maths)."""
    out, states, _ = launched
    capture = worker.Capture()
    try:
        r = worker.search_mod.search(worker.search_cfg("ref", out / "sigterm-1"), resume=out / "sigterm-1")
        state = capture.state()
    finally:
        capture.restore()
    assert_states(state, states["ref", 0]["state"], atol=2e-6, rtol=1e-5)
    torch.testing.assert_close(r.history, states["ref", 0]["history"], atol=1e-6, rtol=1e-5)
    ref_rows = [json.loads(line) for line in (out / "ref" / "metrics.jsonl").read_text().splitlines()]
    rows = [json.loads(line) for line in (out / "sigterm-1" / "metrics.jsonl").read_text().splitlines()]
    assert [row["train_loss"] for row in rows] == pytest.approx([row["train_loss"] for row in ref_rows], rel=1e-5)


def test_bn_groups_1_over_processes_says_why_in_the_terms_of_the_run(monkeypatch):
    """A training run was told it could not share statistics `with --hessian exact`, a search flag."""
    monkeypatch.setattr(distributed, "rank_world", lambda: (0, 2))
    with pytest.raises(ConfigError) as info:
        distributed.bn_groups_for(1, 8, torch.device("cpu"))
    assert "only on CUDA (SyncBatchNorm)" in str(info.value) and "hessian" not in str(info.value)
    with pytest.raises(ConfigError, match="and not with hessian='exact'"):
        distributed.bn_groups_for(1, 8, torch.device("cuda"), exact_hessian=True)


def test_bn_groups_rules():
    cpu = torch.device("cpu")
    assert distributed.bn_groups_for(0, 8, cpu) == 1           # one process: global-batch statistics
    assert distributed.bn_groups_for(4, 8, cpu) == 4           # one process emulating 4 ranks
    with pytest.raises(ConfigError, match="does not divide"):
        distributed.bn_groups_for(3, 8, cpu)
    with pytest.raises(ConfigError, match="bn_groups"):
        search_config("darts", batch_size=8, bn_groups=-1)


def test_bn_groups_over_processes_offer_1_only_where_statistics_can_be_shared(monkeypatch):
    """4 CPU processes and a saved bn_groups 2 said 'must be 1 or a multiple of 4', though 1 cannot be had
    on CPU (review); on CUDA 1 (SyncBatchNorm) is offered."""
    monkeypatch.setattr(distributed, "rank_world", lambda: (0, 4))
    with pytest.raises(ConfigError, match=r"^bn_groups: 6 with 4 processes: bn_groups must be a multiple of the "
                                          r"number of processes \(4\) here$"):
        distributed.bn_groups_for(6, 24, torch.device("cpu"))
    with pytest.raises(ConfigError, match=r"must be 1 or a multiple of the number of processes \(4\)$"):
        distributed.bn_groups_for(6, 24, torch.device("cuda"))


def test_an_error_only_one_rank_meets_before_the_ranks_start_is_said(tmp_path):
    """torchrun, 2 processes: rank 1's genotype file is missing, rank 0's is there. Rank 1's error comes
    before the process group exists, where most errors are every rank's (said by rank 0 alone): it
    must still be said, with its rank, not lost while rank 0 waits for it."""
    G.save(G.load("DARTS_V2"), tmp_path / "genotype0.json")
    script = tmp_path / "per_rank.py"
    script.write_text("import os, sys\nfrom diffnas import cli\ncli.QUIET_RANK_WAIT = 0.5\n"
                      "sys.exit(cli.main(['train', '--genotype', f'genotype{os.environ[\"RANK\"]}.json', "
                      "'--dataset', 'synthetic', '--layers', '3', '--channels', '4', '--epochs', '1', "
                      "'--max-steps', '1', '--batch-size', '8', '--no-plots']))\n")
    proc = torchrun(str(script), cwd=tmp_path)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode != 0
    assert "diffnas: error: rank 1: genotype1.json: no such file" in output, output


def test_a_run_folder_in_use_stops_every_rank_with_one_line(tmp_path):
    """torchrun `search --resume RUN` while another process writes RUN: rank 0 (which alone locks the
    folder) said "in use", and rank 1 went on into the first step and died in gloo ("Connection closed
    by peer", a traceback) or hung (review)."""
    import fcntl

    run = tmp_path / "run"
    assert cli.main(["search", *REF_FLAGS, "--epochs", "1", "--max-steps", "1", "--run-dir", str(run)]) == 0
    held = os.open(run, os.O_RDONLY)   # as the other diffnas process holds it
    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        proc = torchrun("-m", "diffnas", "search", "--resume", str(run), "--epochs", "2", cwd=tmp_path)
        output, _ = proc.communicate(timeout=300)
    finally:
        os.close(held)
    assert proc.returncode != 0
    assert output.count("in use by another diffnas process") == 1, output
    # torchrun's own ChildFailedError block follows any failed worker; no worker's traceback does
    assert "[rank1]" not in output and "Connection closed" not in output, output


def test_a_complete_runs_resume_with_more_processes_writes_nothing(tmp_path, monkeypatch, capsys):
    """A complete run resumed under torchrun rewrote config.json's bn_groups 1 -> 2 though nothing ran
    (review): a later extension in one process then computed per-rank statistics it never had."""
    run = tmp_path / "run"
    assert cli.main(["search", *REF_FLAGS, "--epochs", "1", "--max-steps", "1", "--run-dir", str(run)]) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    monkeypatch.setattr(distributed, "rank_world", lambda: (0, 2))   # as torchrun's 2 processes would
    assert cli.main(["search", "--resume", str(run)]) == 0
    assert "is complete (1/1 epochs)" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_a_run_folder_in_use_is_said_alone_without_the_bn_groups_fallback(tmp_path, monkeypatch, capsys):
    """A resume with more processes warned of its bn_groups fallback, then said the folder was in use
    (review): the warning is said once the run's folder is its own."""
    import fcntl

    run = tmp_path / "run"
    assert cli.main(["search", *REF_FLAGS, "--epochs", "1", "--max-steps", "1", "--run-dir", str(run)]) == 0
    capsys.readouterr()
    monkeypatch.setattr(distributed, "rank_world", lambda: (0, 2))   # as torchrun's 2 processes would
    held = os.open(run, os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        assert cli.main(["search", "--resume", str(run), "--epochs", "2"]) == 2
    finally:
        os.close(held)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "in use by another diffnas process" in err, err


def test_a_batch_that_does_not_split_over_the_processes_says_so(monkeypatch):
    """torchrun with 2 processes and --batch-size 33: the batch is the problem, not bn_groups."""
    monkeypatch.setattr(distributed, "rank_world", lambda: (0, 2))
    with pytest.raises(ConfigError, match=r"^batch_size: 33 images do not split evenly over 2 processes .*"
                                          r"use a multiple of 2$"):
        distributed.bn_groups_for(0, 33, torch.device("cpu"))
    assert distributed.bn_groups_for(0, 34, torch.device("cpu")) == 2
    with pytest.raises(ConfigError, match=r"^bn_groups: 4 does not divide the batch size 34$"):
        distributed.bn_groups_for(4, 34, torch.device("cpu"))
    # a resumed run keeps its batch: the advice is a number of processes (review: "use a multiple of 3")
    monkeypatch.setattr(distributed, "rank_world", lambda: (0, 3))
    with pytest.raises(ConfigError, match=r"^batch_size: 32 images do not split evenly over 3 processes .*; resume "
                                          r"it with a number of processes that divides it \(1, 2, 4, 8, 16, 32\)$"):
        distributed.bn_groups_for(0, 32, torch.device("cpu"), resumed=True)


def test_grouped_forward_is_the_ranks_maths():
    """GroupedForward on a batch = each half run on its own from the same state; buffers averaged."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Dropout(0.5))
    halves = [torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)) for _ in range(2)]
    for h in halves:
        h.load_state_dict(net[:2].state_dict())
    grouped = distributed.prepare(net, 2)
    x = torch.randn(6, 3, 5, 5)
    state = torch.get_rng_state()
    y = grouped(x)
    after = torch.get_rng_state()
    torch.set_rng_state(state)
    mask = torch.empty(6, 4, 3, 3).bernoulli_(0.5)           # the global batch's dropout mask, one draw
    assert torch.equal(torch.get_rng_state(), after)         # the RNG moved as for one draw
    expect = torch.cat([h(x[3 * i:3 * i + 3]) for i, h in enumerate(halves)]) * mask * 2
    torch.testing.assert_close(y, expect)
    torch.testing.assert_close(net[1].running_mean, (halves[0][1].running_mean + halves[1][1].running_mean) / 2)
    torch.testing.assert_close(net[1].running_var, (halves[0][1].running_var + halves[1][1].running_var) / 2)
    assert int(net[1].num_batches_tracked) == 1


def test_a_rank_waiting_for_its_peers_ends_on_sigterm(tmp_path):
    """A rank whose peers never came (one failed at its start; RANK and WORLD_SIZE left in the shell)
    waits inside torch's C++ rendezvous, where Python's handlers never run: it ignored SIGTERM and
    SIGINT for the rendezvous's 30 minutes, and torchrun had to SIGKILL it."""
    import socket

    with socket.socket() as s:   # a free port, which no peer will join
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "RANK": "0", "WORLD_SIZE": "2",
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    code = ("import signal, sys\nfrom diffnas import distributed\n"
            "signal.signal(signal.SIGTERM, lambda *a: sys.exit(99))\n"   # a Python handler, as the command sets
            "print('waiting', flush=True)\ndistributed.setup()\n")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "waiting"
        deadline = time.monotonic() + 120
        while True:   # rank 0 serves the rendezvous's store on the port once it waits in it
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "the rendezvous never started"
                time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == -signal.SIGTERM   # ended by the signal, as the OS does
    finally:
        proc.kill()


def test_a_half_set_torchrun_environment_is_one_line(monkeypatch):
    """RANK and WORLD_SIZE without MASTER_ADDR was a 30-line ValueError from torch's rendezvous."""
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.setenv("MASTER_PORT", "29500")
    with pytest.raises(ConfigError, match="^RANK and WORLD_SIZE are set but MASTER_ADDR not: launch the processes "
                                          "with torchrun"):
        distributed.setup()


def test_a_stop_outside_the_loops_is_said_by_rank_0_only(monkeypatch, capsys):
    """Under torchrun a Ctrl-C or SIGTERM while a command started was said once per process."""
    from diffnas.signals import Terminated

    for rank, said in (("1", ""), ("0", "diffnas: terminated (SIGTERM)\n")):
        monkeypatch.setenv("RANK", rank)
        monkeypatch.setenv("WORLD_SIZE", "2")

        def stopped(*args):
            raise Terminated(signal.SIGTERM)

        monkeypatch.setattr(cli, "_run", stopped)
        assert cli.main(["search"]) == 143
        assert capsys.readouterr().err == said


PER_RANK = """import json, os, sys
from diffnas.cli import main
sys.exit(main(json.loads(os.environ["ARGV" + os.environ["RANK"]])))
"""


@pytest.mark.parametrize("case", ["seed", "data"])
def test_ranks_that_disagree_stop_together_in_one_line(tmp_path, case):
    """A seed typed differently on one machine ran silently with other alphas per rank (the genotype
    was rank 0's); a data folder only one rank lacked left rank 0 in DDP's collective alone: a 33-line
    gloo traceback."""
    (tmp_path / "per_rank.py").write_text(PER_RANK)
    write_image_folder(tmp_path / "images", per_class=8, size=(8, 8))
    base = ["search", "--dataset", "imagefolder", "--layers", "3", "--channels", "4", "--nodes", "2", "--epochs", "1",
            "--max-steps", "1", "--batch-size", "4", "--no-plots", "--run-dir", str(tmp_path / "run")]
    ok = [*base, "--data-dir", str(tmp_path / "images")]
    other = ([*ok, "--seed", "3"] if case == "seed" else [*base, "--data-dir", str(tmp_path / "gone")])
    proc = torchrun(str(tmp_path / "per_rank.py"), env={"ARGV0": json.dumps(ok), "ARGV1": json.dumps(other)})
    output = proc.communicate(timeout=300)[0]
    assert proc.returncode != 0, output[-3000:]
    # torchrun's own ChildFailedError traceback follows any failed worker; a worker's is no more
    assert "[rank0]: Traceback" not in output and "Connection closed by peer" not in output, output[-3000:]
    errors = [line for line in output.splitlines() if "diffnas: error:" in line]
    if case == "seed":   # every rank's error alike: rank 0 says it
        assert errors == ["diffnas: error: seed: rank 1 was started with 3, rank 0 with 2; every process of a run "
                          "takes the same command and config"], output[-3000:]
    else:   # the rank that meets it says it first; rank 0 may add that it could not go on
        assert errors[0].startswith("diffnas: error: rank 1: imagefolder: "), output[-3000:]
        assert errors[1:] in ([], ["diffnas: error: rank 1 could not go on (its error says why)"]), output[-3000:]
    assert not (tmp_path / "run").exists()


KILLED_RANK = """import importlib, json, os, signal, sys
from diffnas.cli import main
search_mod = importlib.import_module("diffnas.search")   # the module (diffnas.search is the function)
real, calls = search_mod.search_step, [0]


def step(*args, **kwargs):
    calls[0] += 1
    if os.environ["RANK"] == "1" and calls[0] == 3:   # epoch 2, step 1: after the first checkpoint
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)


search_mod.search_step = step
sys.exit(main(json.loads(os.environ["ARGV"])))
"""


def test_a_rank_killed_mid_run_leaves_the_others_one_line_and_the_resume(tmp_path):
    """The surviving rank printed some 40 lines of gloo's "Connection closed by peer" traceback, and
    nothing said that the checkpoint was kept or how to go on."""
    (tmp_path / "killed_rank.py").write_text(KILLED_RANK)
    run = tmp_path / "run"
    argv = ["search", *REF_FLAGS[:-1], "--epochs", "2", "--no-plots", "--run-dir", str(run)]
    proc = torchrun(str(tmp_path / "killed_rank.py"), env={"ARGV": json.dumps(argv)})
    output = proc.communicate(timeout=300)[0]
    assert proc.returncode != 0, output[-3000:]
    assert "[rank0]: Traceback" not in output and "[rank0]: RuntimeError" not in output, output[-3000:]
    errors = [line for line in output.splitlines() if "diffnas: error:" in line]
    assert errors == [f"diffnas: error: another process of the run ended (killed, or out of memory?); its last "
                      f"checkpoint is kept; resume with: diffnas search --resume {run}"], output[-3000:]
    assert (run / "checkpoint.pt").is_file()
