import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_study():
    spec = importlib.util.spec_from_file_location("study", ROOT / "benchmarks" / "study.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_study_runs_end_to_end_and_resumes(tmp_path, monkeypatch):
    study = load_study()
    argv = ["--dataset", "synthetic", "--out", str(tmp_path), "--seeds", "0",
            "--presets", "darts-1st", "--search-epochs", "1", "--search-max-steps", "1", "--train-epochs", "1",
            "--train-max-steps", "1", "--train-layers", "3", "--train-channels", "4", "--random", "2", "--device", "cpu",
            "--search-batch-size", "8", "--train-batch-size", "8"]
    assert study.main(argv) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    methods = [r["method"] for r in results["trainings"]]
    assert methods == ["darts-1st", "DARTS_V2 (published)", "random", "random"]
    text = (tmp_path / "RESULTS.md").read_text()
    assert "| random | 2 |" in text and "diffnas train --genotype random:1" in text
    # a second call reads the finished runs back instead of redoing them
    calls = []
    monkeypatch.setattr(study, "search", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(study, "train", lambda *a, **k: calls.append(a))
    assert study.main(argv) == 0 and not calls
