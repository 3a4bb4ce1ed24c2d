"""What the loops' tqdm bars show: every redraw, parsed into (steps counted, loss shown)."""

from __future__ import annotations

import re

import tqdm


def redraw_every_step(monkeypatch) -> None:
    """RunLog.progress bars redraw at every step, from the first (theirs wait 0.5 s between redraws, and into
    a log, as a test's captured stderr is, 30 s before the first)."""

    class Eager(tqdm.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "mininterval": 0, "miniters": 1, "delay": 0})

    monkeypatch.setattr(tqdm, "tqdm", Eager)


def bars_from_the_start(monkeypatch) -> None:
    """diffnas's bars show from their first step: into a log, as a test's captured stderr is, a bar shows
    only after its first 30 s redraw interval (notices.bar_settings)."""
    from diffnas import notices

    monkeypatch.setattr(notices, "redraw_interval", lambda: 0.0)


def shown(err: str, desc: str) -> list[tuple[int, str | None]]:
    """(n, loss) of each redraw of the bar called `desc` in the captured stderr."""
    found = []
    for text in err.replace("\n", "\r").split("\r"):   # a log's redraws are lines
        m = re.match(rf"{re.escape(desc)}: .*?\| (\d+)/\d+ \[([^\]]*)\]", text)
        if m:
            loss = re.search(r"loss=([\d.]+)", m.group(2))
            found.append((int(m.group(1)), loss.group(1) if loss else None))
    return found


def check_aligned(redraws: list[tuple[int, str | None]], losses: list[tuple[float, int]]) -> None:
    """Beside a count of k steps the bar shows the running loss of those k steps (none at 0);
    `losses` holds each step's (mean loss, images)."""
    assert redraws and max(n for n, _ in redraws) == len(losses), redraws
    for n, loss in redraws:
        if n == 0:
            assert loss is None, redraws
        else:
            mean = sum(l * b for l, b in losses[:n]) / sum(b for _, b in losses[:n])
            assert loss == f"{mean:.3f}", (n, loss, mean, redraws)
