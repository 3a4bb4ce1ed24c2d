"""A one-file HTML report of a run folder (DESIGN.md, "Run folder"): `write_report` draws the figures
(`run_figures.plot_run`, also importable from here with `plot_curves`) and writes `report.html`, which
embeds its figures as base64 (each the smaller of its SVG and PNG) so the file alone opens in a browser,
and links to the SVG/PNG/.dot files beside it. A piece that is missing or unreadable is skipped with one
line saying so.
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import os
import re
from pathlib import Path
from typing import Any, TypedDict, cast
from urllib.parse import quote

from . import genotype as G
from .atomic import atomic_write
from .collapse import collapse_warning, unchanged_note
from .config import SearchConfig, TrainConfig, from_dict, inapplicable
from .discretise import threshold_notes
from .errors import ConfigError, DiffnasError
from .loop import few_steps_note
from .notices import shell
from .plots import load_alphas
from .runfolder import check_run_dir
from .run_figures import (check_run_folder, latest_genotype, note, plot_curves, plot_one, plot_run, run_parts,
                          run_threshold, short)
from .runfolder import run_command
from .runlog import epoch_gaps, epochs_words, read_rows

__all__ = ["check_run_folder", "paper_notation", "plot_curves", "plot_run", "write_report"]

# the first key a figure's name starts with gives its caption: a longer name before its prefix
CAPTIONS = {"curves": "learning curves",
            "weights_heatmap_per_edge": "the same weights as shares of each edge's total: the ops' ranking "
                                        "within an edge, which the edge factor's colours hide",
            "weights_heatmap": "architecture weights psi (edges x ops) of the last epoch saved (its title says which: "
                               "an unfinished run's are not final)",
            "weights_evolution": "architecture weights over the epochs", "cell": "cell diagram",
            "network": "per-layer architecture of the whole network"}



# ---------------------------------------------------------------------------------------------
# HTML

PAGE_WIDTH = 1200   # px: the page's column; wider pictures are scaled down to it
CELL_FIGURES = ("cell_", "network")   # the figures drawn from a genotype alone
_STYLE = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left;
font-size:90%}th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee}figure{margin:1em 0}
figure a img{cursor:zoom-in}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;white-space:pre-wrap}.missing{color:#a40}
tr.unused td,tr.unused th{color:#888}h1,h2,h3,code{overflow-wrap:anywhere}"""
# Lets a headless browser check the page: one flag per <img>, true when it decoded.
_SCRIPT = """window.addEventListener("load", function () {
  document.body.dataset.images = JSON.stringify(Array.from(document.images).map(
    function (i) { return i.complete && i.naturalWidth > 0; }));
});"""


def _e(x: object) -> str:
    return html.escape(str(x))


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return json.dumps(v) if isinstance(v, (list, dict)) else str(v)


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


# summary keys holding a fraction of images: shown in percent, as the command line prints them
PERCENT_SUFFIXES = ("_acc", "_error")


def _summary_value(key: str, v: object) -> str:
    if isinstance(v, float) and key.endswith(PERCENT_SUFFIXES) and 0.0 <= v <= 1.0:
        return f"{100 * v:.2f} %"
    return _fmt(v)


def _table(d: dict[str, Any], summary: bool = False, unused: dict[str, str] | None = None) -> str:
    """A two-column table of `d` (nested keys joined with dots); `unused`: {key: why} of the values that
    changed nothing (config.inapplicable), greyed, with why."""
    show = _summary_value if summary else (lambda k, v: _fmt(v))
    unused = unused or {}
    rows = []
    for k, v in _flatten(d).items():
        if k in unused and v is not None:   # an unset value (xi: the lr) needs no mark
            rows.append(f'<tr class="unused"><th>{_e(k)}</th><td>{_e(show(k, v))} '
                        f'<small>(no effect: {_e(unused[k])})</small></td></tr>')
        else:
            rows.append(f"<tr><th>{_e(k)}</th><td>{_e(show(k, v))}</td></tr>")
    return f"<table>{''.join(rows)}</table>"


def _unused(config: dict[str, Any]) -> dict[str, str]:
    """{key: why} of a run's config.json (`config`) values that changed nothing (config.inapplicable); a
    pipeline's keyed as its table shows them (search.xi). {} for a config this version cannot build (an
    older or edited file): nothing is marked."""
    command: Any = config.get("command")   # any JSON value (an older or edited file)
    if command == "pipeline":   # the training's data is the search's: its table has none of its own
        search = config["search"] if isinstance(config.get("search"), dict) else {}
        data = {k: search[k] for k in ("dataset", "data_dir", "image_size") if k in search}
        return {f"{stage}.{k}": why for stage in ("search", "train") if isinstance(config.get(stage), dict)
                for k, why in _unused({**config[stage], **(data if stage == "train" else {}),
                                       "command": stage}).items()}
    kind = {"search": SearchConfig, "train": TrainConfig}.get(command)
    if kind is None:
        return {}
    try:
        cfg = from_dict(kind, {k: v for k, v in config.items() if k != "command"})
    except (DiffnasError, TypeError, ValueError):
        return {}
    # only what the file itself decides: a value its file leaves out is not taken for the default's
    return {k: unused.why for k, unused in inapplicable(cfg).items() if unused.decided_by in config}


def _json_file(path: Path, notes: list[str] | None, where: str) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        d = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        note(notes, f"{where}{path.name} unreadable ({short(e)}): skipped")
        return None
    return d if isinstance(d, dict) else {"value": d}


def _result_summary(result: dict[str, Any]) -> dict[str, Any]:
    """A training run's result.json as the command line prints it at its end: test error and accuracy,
    parameters in millions (without, and of, the auxiliary head)."""
    out: dict[str, Any] = {}
    acc = result.get("test_acc")
    if isinstance(acc, (int, float)) and not isinstance(acc, bool):
        out.update(test_error=1.0 - acc, test_acc=acc)
    for key, label in (("params", "params (M)"), ("aux_params", "auxiliary head params (M)")):
        if isinstance(result.get(key), int):
            out[label] = f"{result[key] / 1e6:.6f}"
    return out


def _final_metrics(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The last epoch's row ("final seconds": that epoch's), the seconds of all epochs, and the best
    held-out accuracy."""
    out = {f"final {k}": v for k, v in records[-1].items()}
    seconds = [r.get("seconds") for r in records]
    if all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in seconds):
        out["seconds, all epochs"] = sum(seconds)
    for key in ("val_acc", "test_acc"):
        scored = [r for r in records if isinstance(r.get(key), (int, float))]
        if scored:
            best = max(scored, key=lambda r: r[key])
            out[f"best {key}"] = f"{100 * best[key]:.2f} % (epoch {best.get('epoch', records.index(best))})"
    return out


def paper_notation(genotype: G.AnyGenotype) -> str:
    """`str(genotype)` for a Genotype; for a per-layer genotype the same gene notation, a line per
    cell (`genotype.cell_lines`). Either is taken back by --genotype."""
    if isinstance(genotype, G.Genotype):
        return str(genotype)
    return G.cell_lines(genotype)


def _png_width(png: bytes) -> int:
    """The width in a PNG's IHDR chunk (bytes 16-19, big-endian), or 0 when it is not a PNG."""
    return int.from_bytes(png[16:20], "big") if png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) >= 24 else 0


_SVG_WIDTH = re.compile(rb'<svg\b[^>]*?\swidth="([0-9.]+)(pt|px)?"')


def _svg_width(svg: bytes) -> float:
    """The width an SVG is shown at, in CSS px (Graphviz and matplotlib write it in pt: 4/3 px), or
    0 when its root element says none."""
    m = _SVG_WIDTH.search(svg[:4096])
    return float(m[1]) * (4 / 3 if m[2] == b"pt" else 1) if m else 0.0


def _embedded(files: list[Path]) -> tuple[Path, str, bytes, float] | None:
    """What the report embeds of a figure drawn as `files`: the smaller of its SVG and PNG (a cell
    diagram's SVG is an eighth of its PNG, a DNAS heatmap's about half: a DNAS report of 8 layers was
    5 MB of PNGs), as (its file, media type, bytes, width shown in CSS px); None when neither was drawn."""
    found = {f.suffix: f for f in files if f.suffix in (".svg", ".png")}
    if not found:
        return None
    path = min(found.values(), key=lambda f: f.stat().st_size)
    raw = path.read_bytes()
    if path.suffix == ".svg":
        return path, "image/svg+xml", raw, _svg_width(raw)
    return path, "image/png", raw, _png_width(raw)


# the order a reader wants: how the run went, then what it found (the network, its cells), then the
# weights that chose it; a DNAS search's 8 per-layer evolution figures came before its cells
FIGURE_ORDER = ("curves", "network", "cell", "weights_heatmap", "weights_heatmap_per_edge", "weights_evolution", "")


def _kind(stem: Path) -> str:
    """The CAPTIONS key a figure's file name starts with ("" for none)."""
    return next((c for c in CAPTIONS if stem.name.startswith(c)), "")


def _figures_html(paths: list[Path], base: Path) -> str:
    stems: dict[Path, list[Path]] = {}
    for p in paths:
        stems.setdefault(p.with_suffix(""), []).append(p)
    parts = []
    rank = {kind: n for n, kind in enumerate(FIGURE_ORDER)}   # a kind not listed goes last
    for stem, files in sorted(stems.items(), key=lambda item: rank.get(_kind(item[0]), len(rank))):
        kind = _kind(stem)
        links = " ".join(f'<a href="{quote(os.path.relpath(f, base).replace(os.sep, "/"))}">{f.suffix[1:]}</a>'
                         for f in files)
        embedded = _embedded(files)
        img, hint = "", ""
        if embedded is not None:
            shown, media, raw, width = embedded
            data = base64.b64encode(raw).decode("ascii")
            # the picture is a link to its file: a figure wider than the page is shown scaled down (a
            # per-cell heatmap of 8 layers: its numbers unreadable), and the file is at full size
            href = quote(os.path.relpath(shown, base).replace(os.sep, "/"))
            img = f'<a href="{href}"><img src="data:{media};base64,{data}" alt="{_e(stem.name)}"></a>'
            if width > 1.5 * PAGE_WIDTH:   # shown at 2/3 or less: small print unreadable
                hint = " (shown smaller than it is: click it for full size)"
        else:
            img = '<p class="missing">not rendered (Graphviz missing); the .dot source is linked</p>'
        parts.append(f"<figure>{img}<figcaption>{_e(CAPTIONS.get(kind, stem.name))}: "
                     f"<code>{_e(stem.name)}</code> [{links}]{hint}</figcaption></figure>")
    return "\n".join(parts)


class _Remedies(TypedDict, total=False):
    """collapse_warning's keywords for the remedies a run used, those its config.json holds."""

    max_skips: int
    skip_dropout: float


def _cautions(run: Path, config: dict[str, Any], records: list[dict[str, Any]],
              genotype: G.AnyGenotype | None, saved: dict[str, Any]) -> list[str]:
    """What the command line warned about, for a reader of the report alone: a capped run's metrics
    taken on a sample, a run of few steps an epoch (its held-out accuracy reads low: loop.few_steps_note),
    and a search's collapsed normal cell (or its genotype still that of alpha's start).
    `config`: the run's config.json; `genotype`: its genotype.json (None
    when missing or unreadable); `saved`: its checkpoint's plain values (`_saved_state`)."""
    out = []
    command = config.get("command")
    steps, batch = config.get("max_steps"), config.get("batch_size")
    if isinstance(steps, int) and steps > 0 and isinstance(batch, int):
        split = ("test" if command == "train" or config.get("order") == "one-level" else "validation")
        result = _json_file(run / "result.json", None, "") or {}   # a training run's: the images covered
        images, total = result.get("test_images"), result.get("test_images_total")
        if isinstance(images, int) and isinstance(total, int) and images > 0:
            covered = ("on the whole split" if images >= total else
                       f"on a seeded sample of {images:,} of the {total:,} {split} images")
        else:
            covered = (f"on a seeded sample of at most {steps * batch:,} {split} images (the whole split when it "
                       f"holds fewer)")
        out.append(f"max_steps {steps}: each epoch ran at most {steps} steps, and the {split} metrics were "
                   f"taken {covered}")
    per_epoch = saved.get("steps_per_epoch")   # runs from before it was saved: nothing said
    held_out = "test" if command == "train" or config.get("order") == "one-level" else "validation"
    if isinstance(per_epoch, int) and command in ("search", "train") and (
            note := few_steps_note(per_epoch, config.get("max_steps") or 0, held_out)):
        out.append(note.removeprefix("diffnas: "))   # the held-out curves of such a run read low
    if command == "search" and records and genotype is not None:
        done, warmup = records[-1].get("epoch"), config.get("warmup_epochs", 0)
        # the numbers config.json holds (max_skips an int in any config this version writes)
        used = cast(_Remedies, {k: v for k in ("max_skips", "skip_dropout")
                                if isinstance(v := config.get(k), (int, float))})
        arch_epochs = done - warmup if isinstance(done, int) and isinstance(warmup, int) else 0
        start = saved.get("start_genotype")   # a search from before it was saved: None
        warning = collapse_warning(genotype, arch_epochs, **used, start=start)
        if warning:
            out.append(f"warning: {warning}")
        if unchanged := unchanged_note(genotype, arch_epochs, start):
            out.append(f"note: {unchanged}")
    if command == "search":
        out += _threshold_notes(run, config)
    return out


def _threshold_notes(run: Path, config: dict[str, Any]) -> list[str]:
    """A FairDARTS search's notes on cells no input passed the threshold in, from its alphas.pt (the
    last weights) and config.json, as the search said them at its end; none for another search, or
    when either file is unreadable."""
    threshold, nodes = run_threshold(config), config.get("nodes")
    if threshold is None or not isinstance(nodes, int):
        return []
    try:
        alphas = load_alphas(run / "alphas.pt")
        notes = threshold_notes(alphas["history"][-1], alphas["ops"], nodes, threshold, alphas["reductions"])
        return [f"note: {n}" for n in notes]
    except (DiffnasError, ValueError, IndexError, TypeError, RuntimeError):   # missing, or not its shapes
        return []


def _saved_state(run: Path) -> dict[str, Any]:
    """The plain values of the loop state its checkpoint.pt saved (the epoch, the step, the network's
    size; {} when missing, torn or of another format): its tensors mapped, not read, and let go at
    once (a mapping held open would stop a running search replacing the file on Windows)."""
    from .checkpoint import load as load_checkpoint

    try:
        state = load_checkpoint(run / "checkpoint.pt", mapped=True)
    except (DiffnasError, OSError):   # missing, torn, another format (checkpoint.load says which): nothing to say
        return {}
    return {k: v for k, v in state.items() if isinstance(v, (int, float, str, bool))}


def _early_stop(state: dict[str, Any]) -> str | None:
    """Why a search ended before its epochs (`--max-skips`: "early stop at epoch 2: ..."), as its
    checkpoint saved it; None for any other run."""
    reason = state.get("early_stop")
    return reason if isinstance(reason, str) and reason else None


def _network_size(state: dict[str, Any]) -> dict[str, Any]:
    """A search's supernet size as its checkpoint saved it (weights in millions, as a training run's
    params; architecture parameters); {} for a training run or a checkpoint from before it was saved."""
    out: dict[str, Any] = {}
    if isinstance(state.get("weights"), int):
        out["supernet weights (M)"] = f"{state['weights'] / 1e6:.6f}"
    if isinstance(state.get("arch_params"), int):
        out["architecture parameters"] = f"{state['arch_params']:,}"
    return out


def _go_on(stage: str, run: Path, command: Any) -> str:
    """"; if it was interrupted, `diffnas search --resume RUN` continues it" for an unfinished run with a
    checkpoint (a pipeline's stage: the pipeline's resume); "" otherwise."""
    if not (run / "checkpoint.pt").is_file() or command not in ("search", "train"):
        return ""
    # a pipeline's stage, also when reported on its own: resumed on its own, the pipeline never trains
    in_pipeline = stage or (run.name in ("search", "train") and run_command(run.parent) == "pipeline")
    resume = shell("diffnas", "run", "--resume", run.parent) if in_pipeline else \
        shell("diffnas", command, "--resume", run)
    return f"; if it was interrupted, `{resume}` continues it"


def _same_genotype(run_dir: Path) -> bool:
    """Whether a pipeline's training trained the genotype its search found (both genotype.json files
    read and equal): its section then points at the search's instead of repeating it."""
    try:
        return G.load(str(run_dir / "search" / "genotype.json")) == G.load(str(run_dir / "train" / "genotype.json"))
    except (DiffnasError, OSError):
        return False


def _stage_config(config: dict[str, Any], run: Path) -> tuple[str, dict[str, Any]]:
    """A pipeline stage's config table: only what differs from the pipeline's config.json's table for
    the stage (shown above it; the run folder, resolved values), with the heading that says so."""
    pipeline = _json_file(run.parent / "config.json", [], "") or {}
    stage = pipeline.get(run.name)
    if run_command(run.parent) != "pipeline" or not isinstance(stage, dict):
        return "config", config
    absent = object()
    return (f"config (where it differs from the pipeline's {run.name}.* above)",
            {k: v for k, v in config.items() if stage.get(k, absent) != v})


def _section(name: str, run: Path, figures: list[Path], base: Path, notes: list[str],
             searched: bool = False) -> str:
    """The report of one run; `name`: a pipeline's stage ('' for a plain run or the pipeline's own
    part); `searched`: a pipeline's training of the genotype its search found, shown there."""
    where = f"{name}: " if name else ""
    out = [f"<h2>{_e(name)} run</h2>" if name else ""]
    records = read_rows(run / "metrics.jsonl")
    summary = _json_file(run / "summary.json", notes, where) or {}
    config = _json_file(run / "config.json", notes, where)
    command = (config or {}).get("command")
    saved = _saved_state(run) if command in ("search", "train") else {}
    if command == "train":   # its test error and size, as `diffnas train` prints them
        summary = {**_result_summary(_json_file(run / "result.json", notes, where) or {}), **summary}
    summary = {**summary, **_network_size(saved)}
    checkpointed = saved.get("epoch")
    if isinstance(checkpointed, int):   # rows lost or doubled (one past the checkpoint: a kill between the two)
        lost, twice = epoch_gaps([r.get("epoch") for r in records], checkpointed)
        if lost or twice:
            summary = {"metrics": "metrics.jsonl (edited or damaged?) " + "; ".join(
                ([f"lacks the rows of {epochs_words(lost)} of the {checkpointed} the checkpoint has done: the "
                  f"curves and the last row here lack them"] if lost else [])
                + ([f"holds {epochs_words(twice)} twice"] if twice else [])), **summary}
    if records:
        summary = {**summary, **_final_metrics(records)}
    planned = (config or {}).get("epochs")
    done = (checkpointed if isinstance(checkpointed, int) else
            records[-1].get("epoch", len(records)) if records else None)
    if isinstance(planned, int) and isinstance(done, int) and done < planned:
        # a run stopped (NaN, a signal, an early stop) or still going: its "final" row is not the last; one
        # stopped within its first epoch has no row at all, only its checkpoint's steps
        early = _early_stop(saved)   # --max-skips: complete, a resume searches no further
        step = saved.get("step")
        within = f" and {step} steps of epoch {done + 1}" if isinstance(step, int) and step > 0 and not early else ""
        summary = {"epochs done": f"{done} of {planned}{within}: " + (
            early or "the run stopped early or has not finished" + _go_on(name, run, command)), **summary}
    genotype, genotype_epoch = None, None
    if (run / "genotype.json").is_file():
        try:
            genotype = G.load(str(run / "genotype.json"))
        except DiffnasError:
            pass  # already noted by plot_run
    elif (latest := latest_genotype(run)) is not None:
        genotype, genotype_epoch = latest
    if isinstance(summary.get("genotype"), dict):   # a pipeline's: drawn as text, not as its JSON
        summary = {**summary, "genotype": "in the genotype section below" if genotype is not None
                   else "the search's: see the search run's genotype section"}
    cautions = _cautions(run, config or {}, records, genotype, saved)
    if cautions:
        out.append("".join(f'<p class="missing">{_e(c)}</p>' for c in cautions))
    if summary:
        out.append(f"<h3>summary</h3>{_table(summary, summary=True)}")
    if config is not None:
        heading, shown = _stage_config(config, run) if name else ("config", config)
        out.append(f"<h3>{_e(heading)}</h3>{_table(shown, unused=_unused(config))}")
    elif not (run / "config.json").is_file() and not (name == "" and run_parts(run)[0][0]):
        notes.append(f"{where}no config.json: config table skipped")   # a pipeline's own folder has none
    if figures:
        out.append(f"<h3>figures</h3>{_figures_html(figures, base)}")
    if name == "" and run_parts(run)[0][0] and not (run / "train").is_dir():
        out.append(f'<p class="missing">{_e("the training has not started: ")}<code>'
                   f'{_e(shell("diffnas", "run", "--resume", run))}</code> goes on with the pipeline</p>')
    if genotype is not None and searched:
        out.append("<h3>genotype</h3><p>the search's, in its section above (genotype and cell diagrams)</p>")
    elif genotype is not None:
        so_far = "" if genotype_epoch is None else f" after epoch {genotype_epoch} (the search has not finished)"
        # an unfinished search has no genotype.json yet: its genotype so far is genotypes.jsonl's last row
        source = "genotype.json" if genotype_epoch is None else "the last row of genotypes.jsonl"
        out.append(f"<h3>genotype{_e(so_far)}</h3><p>paper notation</p><pre>{_e(paper_notation(genotype))}</pre>"
                   f"<p>JSON (<code>{_e(source)}</code>)</p><pre>{_e(G.to_json(genotype))}</pre>")
    return "\n".join(out)


def check_out(run_dir: Path, out: Path) -> None:
    """A ConfigError for a report's `out` folder that this process cannot write, or that holds another
    run (whose own report and figures it would replace)."""
    check_run_dir(out, "out")
    if out.resolve() != run_dir.resolve() and (out / "config.json").is_file():
        raise ConfigError(f"out: {out} holds a run, whose own report and figures this would replace; "
                          f"name another folder")


def write_report(run_dir: Path, *, notes: list[str] | None = None, redraw: bool = False,
                 out: Path | None = None) -> Path:
    """Draw the figures (`plot_run`) and write `run_dir/report.html`; return its path. Figures drawn
    from the run's files as they are now (at the run's end, by an earlier report) are not drawn again
    unless `redraw`. `out`: the folder the report and its figures go to instead (`out/figures`, a
    pipeline's `out/search/figures` and `out/train/figures`), for a run this process cannot write to."""
    run_dir = check_run_folder(run_dir)
    base = run_dir if out is None else Path(out)
    if out is not None:   # a folder this process cannot write, or another run's: one line, before any drawing
        check_out(run_dir, base)
        base.mkdir(parents=True, exist_ok=True)
    collected: list[str] = []
    sections = []
    if run_parts(run_dir)[0][0]:  # a pipeline: its own config/summary first, then each sub-run
        sections.append(_section("", run_dir, [], base, collected))
    found = _same_genotype(run_dir)
    for name, run in run_parts(run_dir):
        figures_dir = run / "figures" if out is None else base / name / "figures" if name else base / "figures"
        figures = plot_one(run, figures_dir, collected, f"{name}: " if name else "", reuse=not redraw)
        if name == "train" and found:   # the search's cell diagrams, shown in its section already
            figures = [f for f in figures if not f.name.startswith(CELL_FIGURES)]
        sections.append(_section(name, run, figures, base, collected, searched=name == "train" and found))
    for n in collected:
        note(notes, n)
    missing = "".join(f'<li class="missing">{_e(n)}</li>' for n in collected)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>diffnas report: {_e(run_dir.resolve().name)}</title><style>{_STYLE}</style></head>\n<body>"
            f"<h1>diffnas report: {_e(run_dir.resolve().name)}</h1><p><code>{_e(run_dir.resolve())}</code>, "
            f"written {stamp}</p>" + (f"<h3>missing pieces</h3><ul>{missing}</ul>" if missing else "")
            + "\n".join(sections) + f"<script>{_SCRIPT}</script></body></html>\n")
    path = base / "report.html"
    atomic_write(path, lambda tmp: tmp.write_text(page, encoding="utf-8"))   # a refresh never shows half a page
    return path
