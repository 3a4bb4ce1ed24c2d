"""Small run folders in the DESIGN.md format, for tests (plots, report, anyone else's).

The architecture weights follow a seeded random walk of logits through a softmax, and the genotype is
discretised from the final weights by `genotype.top2_cell`, so every file agrees with the others.
Leave pieces out with `omit={"alphas.pt", ...}` to test runs that are incomplete.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch

from diffnas import discretise as D, genotype as G

OPS: tuple[str, ...] = ("none", "max_pool_3x3", "skip_connect", "sep_conv_3x3", "dil_conv_3x3")


def cell_edges(nodes: int) -> list[list[int]]:
    """DESIGN.md edge order: node by node, within node i by source j = 0 .. i + 1."""
    return [[j, i + 2] for i in range(nodes) for j in range(i + 2)]


def _write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def search_metrics(epochs: int) -> list[dict]:
    return [{"epoch": e + 1, "train_loss": 2.3 / (1 + e), "train_acc": 0.1 + 0.8 * e / max(epochs, 1),
             "val_loss": 2.4 / (1 + 0.8 * e), "val_acc": 0.1 + 0.7 * e / max(epochs, 1),
             "w_lr": 0.025 * (1 - e / (epochs + 1)), "alpha_lr": 3e-4, "seconds": 1.5} for e in range(epochs)]


def train_metrics(epochs: int) -> list[dict]:
    return [{"epoch": e + 1, "train_loss": 2.0 / (1 + e), "train_acc": 0.2 + 0.7 * e / max(epochs, 1),
             "test_loss": 2.1 / (1 + e), "test_acc": 0.2 + 0.6 * e / max(epochs, 1),
             "lr": 0.025 * (1 - e / (epochs + 1)), "drop_path": 0.2 * e / max(epochs, 1), "seconds": 2.0}
            for e in range(epochs)]


def write_search_run(path: Path, shared: bool = True, layers: int = 5, nodes: int = 3, epochs: int = 3,
                     ops: Sequence[str] = OPS, seed: int = 0, omit: Iterable[str] = ()) -> Path:
    """A search run folder: config.json, metrics.jsonl, alphas.pt, genotype.json, genotypes.jsonl."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    omit = set(omit)
    gen = torch.Generator().manual_seed(seed)
    edges = cell_edges(nodes)
    reductions = sorted(G.reduction_layers(layers))
    # logits (T, L, E, O): a random walk; shared runs repeat one normal and one reduce cell over layers
    cells = 2 if shared else layers
    steps = torch.randn(epochs + 1, cells, len(edges), len(ops), generator=gen).cumsum(0)
    if shared:
        steps = steps[:, [1 if k in reductions else 0 for k in range(layers)]]
    history = steps.softmax(-1)

    def geno(psi: torch.Tensor) -> G.AnyGenotype:
        made = [D.top2_cell(psi[k], ops, nodes, reduction=k in reductions) for k in range(layers)]
        if not shared:
            return G.CellwiseGenotype(tuple(made))
        n, r = made[[k for k in range(layers) if k not in reductions][0]], made[reductions[0]]
        return G.Genotype(n.genes, n.concat, r.genes, r.concat)

    files = {
        "config.json": lambda p: p.write_text(json.dumps({
            "command": "search", "method": "darts", "dataset": "synthetic", "layers": layers, "nodes": nodes,
            "epochs": epochs, "shared": shared, "ops": list(ops), "w_lr": 0.025, "alpha_lr": 3e-4,
            "seed": seed, "device": "cpu"}, indent=1)),
        "metrics.jsonl": lambda p: _write_jsonl(p, search_metrics(epochs)),
        "alphas.pt": lambda p: torch.save({"ops": list(ops), "edges": edges, "reductions": reductions,
                                           "shared": shared, "history": history}, p),
        "genotype.json": lambda p: G.save(geno(history[-1]), p),
        "genotypes.jsonl": lambda p: _write_jsonl(
            p, ({"epoch": t, "genotype": geno(history[t]).to_dict()} for t in range(1, epochs + 1))),
    }
    for name, write in files.items():
        if name not in omit:
            write(path / name)
    return path


def write_train_run(path: Path, genotype: G.AnyGenotype | None = None, epochs: int = 4,
                    omit: Iterable[str] = ()) -> Path:
    """A train run folder: config.json, metrics.jsonl, genotype.json."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    omit = set(omit)
    genotype = genotype or G.KNOWN["DARTS_V2"]
    if "config.json" not in omit:
        (path / "config.json").write_text(json.dumps({"command": "train", "dataset": "synthetic", "layers": 8,
                                                      "init_channels": 16, "epochs": epochs, "lr": 0.025}))
    if "metrics.jsonl" not in omit:
        _write_jsonl(path / "metrics.jsonl", train_metrics(epochs))
    if "genotype.json" not in omit:
        G.save(genotype, path / "genotype.json")
    return path


def write_pipeline_run(path: Path, shared: bool = True, **search: Any) -> Path:
    """A pipeline folder: config.json, summary.json, search/ (`write_search_run(**search)`) and train/
    (the searched genotype)."""
    path = Path(path)
    found_in = write_search_run(path / "search", shared=shared, **search)
    found = G.load(str(found_in / "genotype.json"))
    write_train_run(path / "train", found)
    (path / "config.json").write_text(json.dumps({"command": "pipeline", "search": {"epochs": 3},
                                                  "train": {"epochs": 4}}))
    (path / "summary.json").write_text(json.dumps({"test_error": 0.2, "params_m": 3.3, "search_seconds": 4.5,
                                                   "train_seconds": 8.0}))
    return path
