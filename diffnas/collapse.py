"""The known DARTS failure, said of a genotype: normal cells dominated by parameter-free ops.

`collapse_warning` is what a search prints at its end and its report repeats; `skip_count` is what
`--max-skips` stops a search on. Plain functions of a genotype, no run state.
"""

from __future__ import annotations

from typing import Optional

from . import genotype as genotype_lib
from .notices import option
from .ops import PARAMETER_FREE


# "fewer epochs" is advice for a long search (the paper's 50 epochs: DARTS+ stops such a search early,
# as skips take over late); after a short one (the quick search's 5) it is none
FEWER_EPOCHS_FROM = 10
# DARTS+ (Liang et al. 2019), criterion 1: stop "when there are two or more than two skip-connects in one
# normal cell"; --max-skips N stops on more than N
DARTS_PLUS_MAX_SKIPS = 1


def collapse_warning(genotype: genotype_lib.AnyGenotype, arch_epochs: int = 50, *, max_skips: int = 0,
                     skip_dropout: float = 0.0, start: Optional[str] = None) -> Optional[str]:
    """The known DARTS failure: normal cells dominated by parameter-free ops (skips and pools).
    'none' genes are not counted: the top-2 discretisation never picks 'none', and a FairDARTS
    genotype holds them only where no op passed the threshold. `arch_epochs`: the epochs that
    updated alpha (fewer epochs is advice from FEWER_EPOCHS_FROM on; none, no warning: alpha kept its random start,
    whose genotype says nothing about collapse). `max_skips`, `skip_dropout`: the run's own values; a
    remedy it used already is not advised (--max-skips 1, DARTS+'s stop at two skips, only over no cap
    or a looser one), nor one for skips where the cell has none (or too few for --max-skips 1 to stop
    on). `start`: the JSON of the
    genotype of alpha's random start; a genotype still that one was not learned, and is said by
    `unchanged_note` instead."""
    if arch_epochs <= 0 or (start is not None and genotype_lib.to_json(genotype) == start):
        return None
    cells = _normal_cells(genotype)
    genes = [op for c in cells for op, _ in c.genes if op != "none"]
    free = sum(op in PARAMETER_FREE for op in genes)
    if genes and free * 2 > len(genes):
        skips = sum(op == "skip_connect" for op in genes)
        # the skip remedies where skips are the trouble (a cell of pools has none for them to act on)
        # DARTS+ (Liang et al. 2019, criterion 1) stops when a normal cell holds two or more skips: a cap of 1
        tighter = skip_count(genotype) > DARTS_PLUS_MAX_SKIPS and (not max_skips or max_skips > DARTS_PLUS_MAX_SKIPS)
        remedies = ([option("max_skips", DARTS_PLUS_MAX_SKIPS)] if tighter else []) \
            + ([] if skip_dropout or not skips else [option("skip_dropout", 0.2)]) \
            + (["fewer epochs"] if arch_epochs >= FEWER_EPOCHS_FROM else [])
        advice = ("; consider " + (" or ".join(remedies) if len(remedies) < 3
                                   else f"{remedies[0]}, {remedies[1]} or {remedies[2]}")) if remedies else ""
        subject = "normal cell is" if len(cells) == 1 else f"{len(cells)} normal cells are"
        return (f"the searched {subject} dominated by parameter-free ops ({free} of {len(genes)} "
                f"genes, {skips} skip_connect): the known DARTS collapse{advice}")
    return None


def _normal_cells(genotype: genotype_lib.AnyGenotype) -> list[genotype_lib.Cell]:
    """The normal cells: the one of a normal/reduce genotype, each of a per-cell one."""
    if isinstance(genotype, genotype_lib.CellwiseGenotype):
        return [c for c in genotype.cells_ if not c.reduction]
    return [genotype.cell(False)]


def skip_count(genotype: genotype_lib.AnyGenotype) -> int:
    """The most skip_connect genes in one normal cell (what --max-skips caps)."""
    return max(sum(op == "skip_connect" for op, _ in c.genes) for c in _normal_cells(genotype))


def unchanged_note(genotype: genotype_lib.AnyGenotype, arch_epochs: int, start: Optional[str]) -> Optional[str]:
    """A search whose architecture steps left the genotype as alpha's random start gave it (`start`: its
    JSON; a few steps of a quick or dry run): what it found says nothing yet, collapse or otherwise."""
    if arch_epochs <= 0 or start is None or genotype_lib.to_json(genotype) != start:
        return None
    return (f"the genotype is still the one of the architecture weights' random start: {arch_epochs} epoch"
            f"{'s' if arch_epochs != 1 else ''} of architecture steps did not change it (a longer search would)")
