"""The library's messages on stderr (notes, warnings, what to run to resume) go through the `diffnas`
logger, so a Python caller can quiet or redirect them with `logging`:
`logging.getLogger("diffnas").setLevel(logging.WARNING)` keeps only the warnings. By default the
logger writes each line to the current sys.stderr, as the command line shows them, and does not pass
them on to the root logger. Progress bars (tqdm) are not messages and are not affected.
"""

from __future__ import annotations

import logging
import sys

LOGGER = logging.getLogger("diffnas")


class _Stderr(logging.Handler):
    """Each record's message, as it is, on whatever sys.stderr is when it is said (a test's capture,
    a redirect made after import); above any progress bar when the record asks (`above_bars`)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            if getattr(record, "above_bars", False):
                from tqdm import tqdm

                tqdm.write(text, file=sys.stderr)
            else:
                print(text, file=sys.stderr, flush=True)
        except Exception:   # logging's contract: a failing handler reports, never raises
            self.handleError(record)


if not LOGGER.handlers:
    LOGGER.addHandler(_Stderr())
    LOGGER.propagate = False
if LOGGER.level == logging.NOTSET:   # a level the caller set before importing diffnas stays
    LOGGER.setLevel(logging.INFO)


def say(line: str, *, above_bars: bool = False) -> None:
    """One line for the user: a warning (logging.WARNING) when it says "diffnas: warning:", else a
    note (logging.INFO). above_bars: written above an active progress bar, not into it."""
    level = logging.WARNING if line.startswith("diffnas: warning:") else logging.INFO
    LOGGER.log(level, line, extra={"above_bars": above_bars})
