"""Paced: between-epoch drawing kept to a share of the run's time."""
from __future__ import annotations

import pytest

from diffnas.paced import Paced


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def drawing(clock: Clock, cost: float, calls: list[float]):
    def fn() -> None:
        calls.append(clock.now)
        clock.now += cost
    return fn


def test_the_first_call_runs_and_cheap_calls_always_run() -> None:
    clock, calls = Clock(), []
    paced = Paced(drawing(clock, 0.5, calls), share=0.05, clock=clock)
    for _ in range(10):
        clock.now += 12.0   # an epoch of 12 s; a draw of 0.5 s is 4% of it
        assert paced()
    assert len(calls) == 10


def test_costly_calls_are_skipped_to_keep_their_share() -> None:
    clock, calls = Clock(), []
    paced = Paced(drawing(clock, 1.0, calls), share=0.05, clock=clock)
    ran = []
    for _ in range(200):
        clock.now += 2.0   # epochs of 2 s, draws of 1 s: every call would be a third of the time
        ran.append(paced())
    assert ran[0]
    assert not all(ran)
    total = clock.now - 100.0
    assert sum(ran) == len(calls)
    assert len(calls) <= 0.05 * total + 1   # at most the share, and the first call
    assert len(calls) >= 0.05 * total - 2   # no fewer than the share allows: the curves stay fresh


def test_a_failing_call_is_counted_and_raises() -> None:
    clock = Clock()

    def fails() -> None:
        clock.now += 3.0
        raise OSError("disk full")

    paced = Paced(fails, share=0.5, clock=clock)
    with pytest.raises(OSError):
        paced()
    assert paced.calls == 1 and paced.spent == 3.0


@pytest.mark.parametrize("share", [0, -0.1, 1.5])
def test_a_share_outside_zero_one_is_refused(share: float) -> None:
    with pytest.raises(ValueError, match="share"):
        Paced(lambda: None, share=share)


def _slow_curves_search(tmp_path, monkeypatch, stop: tuple[str, int] | None = None):
    """A 4-epoch search whose curves take a minute of a fake clock (diffnas.paced's own, not
    time.monotonic's: the test's patch stays inside it); `stop`: SIGINT after the n-th step ("step", n)
    as the n-th epoch's weights are saved, between its steps and its end ("alphas", n), or as the
    n-th validation starts ("validate", n). The fake clock's times of the drawings, and the result."""
    import importlib
    import os
    import signal

    search_module = importlib.import_module("diffnas.search")   # `diffnas.search` is the function
    clock = Clock()
    monkeypatch.setattr("diffnas.paced.CLOCK", clock)
    drawn: list[float] = []

    def slow_curves(run_dir) -> None:
        drawn.append(clock.now)
        clock.now += 60.0   # a draw that takes a minute on the fake clock: far above 5% of the epochs

    monkeypatch.setattr(search_module, "_plot_curves", slow_curves)
    monkeypatch.setattr(search_module, "final_figures", lambda run_dir, late_stop: late_stop)
    if stop is not None:
        where, n = stop
        name = {"step": "search_step", "alphas": "atomic_write_bytes", "validate": "score_supernet"}[where]
        real, calls = getattr(search_module, name), []

        def then_stop(*args, **kwargs):
            calls.append(1)
            if where == "validate" and len(calls) == n:
                os.kill(os.getpid(), signal.SIGINT)
            out = real(*args, **kwargs)
            if where != "validate" and len(calls) == n:
                os.kill(os.getpid(), signal.SIGINT)
            return out

        monkeypatch.setattr(search_module, name, then_stop)
    from diffnas import search, search_config

    result = search(search_config("darts-1st", dataset="synthetic", layers=3, channels=4, nodes=2, batch_size=8,
                                  epochs=4, max_steps=2, run_dir=str(tmp_path / "run")), raise_on_stop=False)
    return drawn, result


def test_a_search_with_slow_curves_draws_them_fewer_times_than_epochs(tmp_path, monkeypatch) -> None:
    drawn, result = _slow_curves_search(tmp_path, monkeypatch)
    assert len(drawn) == 1 and not result.interrupted   # the first epoch's; later ones are a moment on the clock


@pytest.mark.parametrize("stop, epochs_done", [(("alphas", 3), 3), (("step", 7), 3), (("validate", 4), 3)])
def test_a_stopped_search_draws_the_curves_pacing_skipped(tmp_path, monkeypatch, stop, epochs_done) -> None:
    """A search stopped at the end of epoch 3, within epoch 4 or in its validation left curves of its
    first epoch only, until `diffnas plot`."""
    drawn, result = _slow_curves_search(tmp_path, monkeypatch, stop)
    assert result.interrupted and len(result.metrics) == epochs_done
    assert len(drawn) == 2   # the first epoch's, then the stop's


def test_a_second_ctrl_c_while_a_stop_draws_the_curves_skips_them(tmp_path, monkeypatch) -> None:
    """The first Ctrl-C saved the checkpoint and said so; a second one during the drawing that follows
    said "stopped at once, without saving" and raised past a caller that asked for the result."""
    import importlib

    search_module = importlib.import_module("diffnas.search")
    real_flush = search_module.Paced.flush

    def interrupted_flush(self):
        if self.skipped:
            raise KeyboardInterrupt   # the second Ctrl-C, inside the drawing
        return real_flush(self)

    monkeypatch.setattr(search_module.Paced, "flush", interrupted_flush)
    drawn, result = _slow_curves_search(tmp_path, monkeypatch, ("step", 7))
    assert result.interrupted and len(drawn) == 1 and (tmp_path / "run" / "checkpoint.pt").is_file()


def test_flush_runs_only_what_was_skipped() -> None:
    clock, calls = Clock(), []
    paced = Paced(drawing(clock, 10.0, calls), share=0.05, clock=clock)
    assert not paced.flush()   # nothing skipped yet
    assert paced() and not paced.flush()
    clock.now += 1.0
    assert not paced() and paced.flush() and len(calls) == 2
    assert not paced.flush()
