"""Search, discretise, train the discovered network, evaluate: one command, one run folder.

RUN_DIR/search/ and RUN_DIR/train/ are ordinary run folders; RUN_DIR/summary.json holds the table.
Running it again on the same folder resumes whichever stage was not finished.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from . import config as config_lib
from . import distributed
from . import genotype as genotype_lib
from .config import SearchConfig, TrainConfig
from .guard import resolve_device
from .search import SearchResult, default_run_dir, search
from .train import TrainResult, train


@dataclass
class PipelineResult:
    run_dir: Path
    search: SearchResult
    train: TrainResult
    summary: dict[str, Any]
    exit_code: int = 0


def _finished(run_dir: Path) -> bool:
    return (run_dir / "genotype.json").is_file() and (run_dir / "checkpoint.pt").is_file()


def run_pipeline(search_cfg: SearchConfig, train_cfg: TrainConfig, run_dir: Optional[Path] = None) -> PipelineResult:
    distributed.setup()
    run_dir = Path(run_dir) if run_dir else distributed.broadcast_object(default_run_dir("run"))
    s_dir, t_dir = run_dir / "search", run_dir / "train"
    search_cfg = dataclasses.replace(search_cfg, run_dir=str(s_dir))
    s_resume = s_dir if (s_dir / "checkpoint.pt").is_file() else None
    s = search(search_cfg, resume=s_resume)
    if s.interrupted:
        return PipelineResult(run_dir, s, None, {}, s.exit_code)  # type: ignore[arg-type]
    train_cfg = config_lib.from_dict(TrainConfig, {"run_dir": str(t_dir), "dataset": search_cfg.dataset,
                                                   "data_dir": search_cfg.data_dir,
                                                   "image_size": search_cfg.image_size,
                                                   "genotype": str(s_dir / "genotype.json")}, base=train_cfg)
    t_resume = t_dir if (t_dir / "checkpoint.pt").is_file() else None
    t = train(train_cfg, genotype_lib.load(str(s_dir / "genotype.json")), resume=t_resume)
    if t.exit_code:
        return PipelineResult(run_dir, s, t, {}, t.exit_code)
    device = resolve_device(search_cfg.device).type
    unit = "GPU" if device == "cuda" else "CPU"
    summary = {
        "test_error": 1 - t.test_acc, "test_acc": t.test_acc, "params_m": t.params / 1e6,
        f"search_{unit.lower()}_hours": s.seconds / 3600, f"train_{unit.lower()}_hours": t.seconds / 3600,
        "device": device, "preset": search_cfg.preset, "dataset": search_cfg.dataset,
        "genotype": genotype_lib.load(str(s_dir / "genotype.json")).to_dict(),
    }
    if distributed.is_main():
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return PipelineResult(run_dir, s, t, summary)


def summary_table(summary: dict[str, Any]) -> str:
    unit = "gpu" if summary["device"] == "cuda" else "cpu"
    rows = [("test error", f"{100 * summary['test_error']:.2f} %"),
            ("params", f"{summary['params_m']:.3f} M"),
            (f"search cost", f"{summary[f'search_{unit}_hours']:.4f} {unit.upper()}-hours"),
            (f"train cost", f"{summary[f'train_{unit}_hours']:.4f} {unit.upper()}-hours")]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
