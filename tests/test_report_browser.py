"""report.html: what it links exists, missing pieces are named, and a real browser decodes every image."""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote
from xml.etree import ElementTree

import pytest
from PIL import Image
from runfolder_fixtures import write_pipeline_run, write_search_run, write_train_run

from diffnas import genotype as G
from diffnas import report, run_figures
from diffnas.errors import ConfigError, DiffnasError

CHROMIUM = Path("/usr/bin/chromium")


class Refs(HTMLParser):
    """Every img src and a href of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a.get("src") or "")
        if tag == "a":
            self.links.append(a.get("href") or "")


def check_refs(page: Path) -> Refs:
    refs = Refs()
    refs.feed(page.read_text())
    for src in refs.imgs + refs.links:
        if src.startswith("data:image/png;base64,"):
            png = base64.b64decode(src.split(",", 1)[1], validate=True)
            with Image.open(io.BytesIO(png)) as im:
                im.load()
                assert im.width > 200 and im.height > 150
        elif src.startswith("data:image/svg+xml;base64,"):
            svg = base64.b64decode(src.split(",", 1)[1], validate=True)
            assert ElementTree.fromstring(svg).tag == "{http://www.w3.org/2000/svg}svg"
            assert report._svg_width(svg) > 200
        else:
            assert not re.match(r"^[a-z]+:", src), f"non-relative reference {src!r}"
            assert (page.parent / unquote(src)).is_file(), f"{page.name} references missing {src!r}"
    return refs


def text_of(page: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page.read_text()))


@pytest.fixture(scope="module")
def pipeline_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    run = write_pipeline_run(tmp_path_factory.mktemp("pipe") / "run", shared=True, nodes=2, epochs=2)
    notes: list[str] = []
    return report.write_report(run, notes=notes), notes


def test_pipeline_report_has_both_runs_and_only_existing_links(pipeline_report: tuple[Path, list[str]]) -> None:
    page, notes = pipeline_report
    run = page.parent
    assert page == run / "report.html"
    refs = check_refs(page)
    linked = {unquote(h) for h in refs.links}
    for sub, stems in (("search", ("curves", "weights_heatmap", "weights_evolution_normal",
                                   "weights_evolution_reduction", "cell_normal", "cell_reduce")),
                       ("train", ("curves",))):   # its cell diagrams are the search's, shown there
        for stem in stems:   # the stages' own figures, as they drew them: not drawn a second time
            assert f"{sub}/figures/{stem}.svg" in linked
    assert len(refs.imgs) == 7  # one embedded picture per figure above
    # each the smaller of its SVG and PNG (a DNAS report of 8 layers was 5 MB of PNGs, half of them not
    # needed), inside a link to the file it is
    pictures = re.findall(r'<a href="([^"]+)"><img src="data:[^;]+;base64,([^"]+)"', page.read_text())
    assert len(pictures) == 7
    # how the run went, what it found, then the weights that chose it (a DNAS search's 8 evolution figures
    # came before its cells)
    assert [Path(unquote(h)).with_suffix("").as_posix() for h, _ in pictures] == [
        "search/figures/curves", "search/figures/cell_normal", "search/figures/cell_reduce",
        "search/figures/weights_heatmap", "search/figures/weights_evolution_normal",
        "search/figures/weights_evolution_reduction", "train/figures/curves"]
    for href, data in pictures:
        shown = run / unquote(href)
        assert base64.b64decode(data) == shown.read_bytes()
        assert shown.stat().st_size == min(f.stat().st_size for f in (shown.with_suffix(".svg"),
                                                                        shown.with_suffix(".png")))
    assert not (run / "figures").exists()
    assert notes == []   # a training run has no alphas.pt, and that is not a missing piece
    text = text_of(page)
    assert "search run" in text and "train run" in text
    summary = json.loads((run / "summary.json").read_text())
    assert all(k in text for k in summary)
    config = json.loads((run / "search" / "config.json").read_text())
    assert all(k in text for k in config)
    # each stage's config table holds only what differs from the pipeline's (shown once, above them)
    pipeline_config = json.loads((run / "config.json").read_text())
    pipeline_config["search"]["layers"] = json.loads((run / "search" / "config.json").read_text())["layers"]
    (run / "config.json").write_text(json.dumps(pipeline_config))   # one value the search run has as well
    page = report.write_report(run)
    for stage in ("search", "train"):
        differs = {k for k, v in json.loads((run / stage / "config.json").read_text()).items()
                   if pipeline_config[stage].get(k, object()) != v}
        table = page.read_text().split(f"config (where it differs from the pipeline&#x27;s {stage}.* above)")[1]
        shown = set(re.findall(r"<th>([^<]+)</th>", table.split("</table>")[0]))
        assert shown == differs and (stage != "search" or "layers" not in shown), (stage, shown ^ differs)
    found = G.load(str(run / "search" / "genotype.json"))
    assert str(found) in text and G.to_json(found) in html.unescape(page.read_text())
    assert "missing pieces" not in text and "no alphas.pt" not in text


def test_a_search_run_without_alphas_is_told_a_train_run_is_not(tmp_path: Path) -> None:
    notes: list[str] = []
    report.plot_run(write_train_run(tmp_path / "t", omit={"metrics.jsonl"}), notes=notes)
    assert notes == ["no metrics.jsonl: learning curves skipped"]
    search = write_pipeline_run(tmp_path / "p", shared=True, nodes=2, epochs=1) / "search"
    (search / "alphas.pt").unlink()
    notes = []
    report.plot_run(search, notes=notes)
    assert notes == ["no alphas.pt: weight heatmaps and weight evolution skipped"]


def test_missing_pieces_are_named_and_the_rest_reported(tmp_path: Path) -> None:
    run = write_train_run(tmp_path / "t", omit={"metrics.jsonl", "config.json"})
    page = report.write_report(run)
    text = text_of(page)
    for line in ("no metrics.jsonl: learning curves skipped",
                 "no alphas.pt: weight heatmaps and weight evolution skipped",
                 "no config.json: config table skipped"):
        assert line in text
    refs = check_refs(page)
    assert len(refs.imgs) == 2  # the two cell diagrams are still there
    assert str(G.load(str(run / "genotype.json"))) in text


def test_empty_or_missing_folder_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a run")
    for bad in (tmp_path / "nope", tmp_path, tmp_path / "notes.txt"):
        with pytest.raises(DiffnasError) as err:
            report.write_report(bad)
        assert "\n" not in str(err.value)
    assert not (tmp_path / "report.html").exists()


def test_a_pipelines_report_written_elsewhere_links_its_own_figures(tmp_path: Path) -> None:
    """--out DIR (a run on read-only storage): report.html and each stage's figures under DIR, the page's
    links to files that are there, and nothing written into the run."""
    run = write_pipeline_run(tmp_path / "run", shared=True, nodes=2, epochs=2)
    before = sorted(p for p in run.rglob("*"))
    page = report.write_report(run, out=tmp_path / "out")
    assert page == tmp_path / "out" / "report.html"
    assert (tmp_path / "out" / "search" / "figures").is_dir() and (tmp_path / "out" / "train" / "figures").is_dir()
    links = re.findall(r'href="([^"]+)"', page.read_text())
    assert links and all((page.parent / unquote(link)).is_file() for link in links)
    assert sorted(p for p in run.rglob("*")) == before
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match=r"^out: .*file is a file, not a folder$"):   # one line, not an OSError
        report.write_report(run, out=tmp_path / "file" / "out")
    with pytest.raises(ConfigError, match=r"^out: .*search holds a run, whose own report and figures this would "
                                          r"replace; name another folder$"):
        report.write_report(run, out=run / "search")   # another run's folder
    assert report.write_report(run / "search", out=run / "search") == run / "search" / "report.html"   # its own


def test_cli_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from diffnas.cli import report as report_cmd

    parser = argparse.ArgumentParser(prog="diffnas")
    report_cmd.register(parser.add_subparsers(dest="command"))
    run = write_train_run(tmp_path / "t", omit={"metrics.jsonl"})
    args = parser.parse_args(["report", str(run)])
    assert args.func(args) == 0
    out, err = capsys.readouterr()
    assert Path(out.strip()) == run / "report.html" and (run / "report.html").is_file()
    assert "no metrics.jsonl" in err
    assert err.splitlines()[0] == (f"diffnas: writing the report of {run}, with its figures (those drawn from its "
                                   f"files as they are now are kept; --redraw draws them all)")
    # --out naming another run: refused in one line, not after "writing the report of ... into" it (README walk)
    other = write_train_run(tmp_path / "other")
    from diffnas import cli

    assert cli.main(["report", str(run), "--out", str(other)]) == 2
    assert capsys.readouterr().err == (f"diffnas: error: --out: {other} holds a run, whose own report and figures "
                                       f"this would replace; name another folder\n")


def browser_data(page: Path, text: str, name: str, profile: Path) -> str:
    """The `data-NAME` attribute that `text` (a report page, with scripts of the test's) leaves on the
    page's body once headless Chromium has loaded it beside `page` (its figures' folder)."""
    probe = page.with_name("probe.html")
    probe.write_text(text)
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--window-size=1280,800", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom",
           probe.resolve().as_uri()]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
        probe.unlink()
    m = re.search(rf'data-{name}="([^"]*)"', done.stdout)
    assert m, f"no data-{name} in the dumped DOM; chromium said: {done.stderr[-2000:]}"
    return html.unescape(m[1])


def test_browser_decodes_every_image(pipeline_report: tuple[Path, list[str]], tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium")
    page, _ = pipeline_report
    n = len(check_refs(page).imgs)
    # a control image that must fail, so a checker that reports everything as loaded is caught
    text = page.read_text().replace("</body>", '<img src="no-such-file.png" alt="control"></body>')
    flags = json.loads(browser_data(page, text, "images", tmp_path / "profile"))
    assert flags == [True] * n + [False], flags


def test_the_report_of_a_run_that_stopped_early_says_how_many_epochs_it_did(tmp_path: Path) -> None:
    """A search stopped by NaN after 1 of 3 epochs was reported with its 'final epoch' and nothing more."""
    import json

    run = write_search_run(tmp_path / "run", nodes=2, epochs=3)
    config = json.loads((run / "config.json").read_text())
    assert config["epochs"] == 3
    assert "epochs done" not in text_of(report.write_report(run))
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text(lines[0] + "\n")
    assert "epochs done 1 of 3: the run stopped early or has not finished" in " ".join(
        text_of(report.write_report(run)).split())


@pytest.mark.parametrize("shared", [True, False])
def test_a_pipelines_summary_points_at_the_genotype_instead_of_dumping_its_json(tmp_path: Path, shared) -> None:
    run = write_pipeline_run(tmp_path / "p", shared=shared, nodes=2, epochs=1)
    found = G.load(str(run / "search" / "genotype.json"))
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "genotype": found.to_dict()}))   # as pipeline.py writes
    page = report.write_report(run)
    text = " ".join(text_of(page).split())
    assert "genotype the search's: see the search run's genotype section" in text
    # the genotype once, in the search's section: the train run's (the same) points there
    assert len(list(run.glob("*/genotype.json"))) == 2 and html.unescape(page.read_text()).count(G.to_json(found)) == 1
    assert "genotype the search's, in its section above (genotype and cell diagrams)" in text
    assert "genotype.normal" not in text and "genotype.cells" not in text


def test_accuracies_and_errors_are_percent_as_on_the_command_line(tmp_path: Path) -> None:
    # the CLI prints "test error 75.00 %"; the report said test_error 0.75 and final val_acc 0.09635
    run = write_pipeline_run(tmp_path / "p", shared=True, nodes=2, epochs=1)
    summary = json.loads((run / "summary.json").read_text())
    text = text_of(report.write_report(run))
    assert f"{100 * summary['test_error']:.2f} %" in text
    last = [json.loads(line) for line in (run / "search" / "metrics.jsonl").read_text().splitlines()][-1]
    assert f"final val_acc {100 * last['val_acc']:.2f} %" in " ".join(text.split())
    assert f"final val_loss {last['val_loss']:.4g}" in " ".join(text.split())   # losses stay as they are


def test_a_runs_summary_gives_the_seconds_of_all_its_epochs_besides_the_last_ones(tmp_path: Path) -> None:
    """'final seconds' is the last epoch's; the run's own time was given nowhere."""
    run = write_search_run(tmp_path / "s", shared=True, nodes=2, epochs=3)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rows = [{**row, "seconds": 10.0 * (i + 1)} for i, row in enumerate(rows)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    text = " ".join(text_of(report.write_report(run)).split())
    assert "final seconds 30 " in text and "seconds, all epochs 60 " in text


def _with_config(run: Path, **changes: object) -> Path:
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, **changes}))
    return run


def test_a_dry_runs_report_says_its_metrics_are_on_a_sample(tmp_path: Path) -> None:
    """`--max-steps` validates on a seeded sample; the CLI says '(on 256 of 749 validation images)',
    the report said nothing, so its accuracies read as the whole split's."""
    search_run = write_search_run(tmp_path / "s", nodes=2, epochs=1)
    train_run = write_train_run(tmp_path / "t", epochs=1)
    for run in (search_run, train_run):
        assert "each epoch ran at most" not in text_of(report.write_report(run))
    said = " ".join(text_of(report.write_report(_with_config(search_run, max_steps=3, batch_size=8))).split())
    assert ("max_steps 3: each epoch ran at most 3 steps, and the validation metrics were taken on "
            "a seeded sample of at most 24 validation images") in said
    said = " ".join(text_of(report.write_report(_with_config(train_run, max_steps=2, batch_size=96))).split())
    assert "the test metrics were taken on a seeded sample of at most 192 test images (the whole split" in said
    # a training run's result.json says what the test covered: all 300 of 300 is no sample
    for images, covered in ((300, "the test metrics were taken on the whole split"),
                            (192, "the test metrics were taken on a seeded sample of 192 of the 300 test images")):
        (train_run / "result.json").write_text(json.dumps({"test_images": images, "test_images_total": 300}))
        assert covered in " ".join(text_of(report.write_report(train_run)).split())
    one_level = _with_config(search_run, order="one-level")
    assert "the test metrics were taken" in " ".join(text_of(report.write_report(one_level)).split())


def test_the_report_repeats_the_collapse_warning_unless_alpha_never_moved(tmp_path: Path) -> None:
    """Only parameter-free candidates: every genotype is collapsed; the CLI's warning was lost once the
    terminal was closed. A search all in warm-up (alpha at its random start) gets none, as on the CLI."""
    free = ("none", "max_pool_3x3", "skip_connect")
    collapsed = write_search_run(tmp_path / "free", nodes=2, epochs=2, ops=free)
    said = " ".join(text_of(report.write_report(_with_config(collapsed, warmup_epochs=1))).split())
    assert "warning: the searched normal cell is dominated by parameter-free ops (4 of 4 genes" in said
    assert "DARTS collapse" not in text_of(report.write_report(_with_config(collapsed, warmup_epochs=2)))
    healthy = write_search_run(tmp_path / "ok", nodes=4, epochs=2)
    G.save(G.KNOWN["DARTS_V2"], healthy / "genotype.json")   # 2 skip_connect of 8 genes
    assert "DARTS collapse" not in text_of(report.write_report(healthy))


def test_edge_factor_runs_get_a_per_edge_heatmap(tmp_path: Path) -> None:
    run = write_search_run(tmp_path / "run", nodes=2, epochs=1)
    for arch, drawn in (("softmax", False), ("pc", True), ("dnas", True), ("sigmoid", False)):
        paths = report.plot_run(_with_config(run, arch=arch))
        assert any(p.name == "weights_heatmap_per_edge.png" for p in paths) is drawn, arch
        shutil.rmtree(run / "figures")
    text = " ".join(text_of(report.write_report(_with_config(run, arch="pc"))).split())
    assert "the ops' ranking within an edge" in text
    assert "architecture weights psi (edges x ops) of the last epoch saved" in text


def test_a_training_runs_report_leads_with_its_test_error_and_size(tmp_path: Path) -> None:
    """result.json held the test accuracy and parameter count, but the report showed neither."""
    run = write_train_run(tmp_path / "t", epochs=2)
    (run / "result.json").write_text(json.dumps({"test_acc": 0.9731, "test_loss": 0.1, "params": 3349342,
                                                 "aux_params": 400000, "seconds": 10.0}))
    said = " ".join(text_of(report.write_report(run)).split())
    assert "test_error 2.69 % test_acc 97.31 % params (M) 3.349342 auxiliary head params (M) 0.400000" in said


def test_the_report_of_an_unfinished_search_shows_its_genotype_so_far_and_how_to_go_on(tmp_path: Path) -> None:
    """A search stopped at epoch 2 of 3: its heatmap was titled '(final epoch)', its genotype reported
    missing (genotype.json is written at the end; genotypes.jsonl had it), and nothing said how to go on."""
    import torch

    from diffnas import plots

    run = write_search_run(tmp_path / "run", nodes=2, epochs=3, omit={"genotype.json"})
    for name in ("metrics.jsonl", "genotypes.jsonl"):
        (run / name).write_text("".join(line + "\n" for line in (run / name).read_text().splitlines()[:2]))
    alphas = torch.load(run / "alphas.pt", weights_only=True)
    torch.save({**alphas, "history": alphas["history"][:3]}, run / "alphas.pt")   # the start and 2 epochs
    (run / "checkpoint.pt").write_bytes(b"")
    notes: list[str] = []
    page = report.write_report(run, notes=notes)
    text = " ".join(text_of(page).split())
    assert (f"epochs done 2 of 3: the run stopped early or has not finished; if it was interrupted, "
            f"`diffnas search --resume {run}` continues it") in text
    second = G.from_dict(json.loads((run / "genotypes.jsonl").read_text().splitlines()[1])["genotype"])
    assert "genotype after epoch 2 (the search has not finished)" in text
    assert "JSON (<code>the last row of genotypes.jsonl</code>)" in page.read_text()   # no genotype.json yet
    assert G.to_json(second) in html.unescape(page.read_text())
    assert [n for n in notes if "genotype" in n] == [
        "no genotype.json yet (written when the search finishes): the genotype after epoch 2, from genotypes.jsonl"]
    # its cells are drawn, titled as the genotype so far (they read as the search's result)
    assert 'label="normal cell (after epoch 2, not finished)"' in (run / "figures" / "cell_normal.dot").read_text()
    (run / "genotypes.jsonl").unlink()
    (run / "genotype.json").write_text(G.to_json(second) + "\n")   # finished: plain titles again
    page = report.write_report(run)
    assert 'label="normal cell"' in (run / "figures" / "cell_normal.dot").read_text()
    assert "JSON (<code>genotype.json</code>)" in page.read_text()
    title = plots.heatmap_figure(plots.load_alphas(run / "alphas.pt"))._suptitle.get_text()
    assert "(after epoch 2)" in title and "final" not in title


def test_the_report_of_a_pipeline_whose_training_has_not_started_says_how_to_go_on(tmp_path: Path) -> None:
    run = write_pipeline_run(tmp_path / "p", shared=True, nodes=2, epochs=1)
    shutil.rmtree(run / "train")
    (run / "summary.json").unlink()
    text = " ".join(text_of(report.write_report(run)).split())
    assert f"the training has not started: diffnas run --resume {run} goes on with the pipeline" in text
    # its search reported on its own, interrupted: resumed alone, the pipeline would never train
    metrics = run / "search" / "metrics.jsonl"
    config = json.loads((run / "search" / "config.json").read_text())
    (run / "search" / "config.json").write_text(json.dumps({**config, "epochs": 2}))
    (run / "search" / "checkpoint.pt").write_bytes(b"")
    assert len(metrics.read_text().splitlines()) == 1
    text = " ".join(text_of(report.write_report(run / "search")).split())
    assert f"if it was interrupted, `diffnas run --resume {run}` continues it" in text
    complete = write_pipeline_run(tmp_path / "done", shared=True, nodes=2, epochs=1)
    assert "has not started" not in text_of(report.write_report(complete))


def test_every_picture_links_its_file_and_a_wide_one_says_it_is_shown_smaller(tmp_path: Path) -> None:
    """A DNAS run's per-layer heatmap is 1908 px wide: scaled into the page its numbers could not be
    read, and nothing led to the full-size file."""
    figures = tmp_path / "figures"
    figures.mkdir()
    for name, width in (("weights_heatmap", report.PAGE_WIDTH + 700), ("curves", 640)):
        Image.new("RGB", (width, 300), "white").save(figures / f"{name}.png")
    page = Fragment(report._figures_html(sorted(figures.glob("*.png")), tmp_path))
    assert page.links == ["figures/curves.png", "figures/curves.png", "figures/weights_heatmap.png",
                          "figures/weights_heatmap.png"]   # the picture's link, then the caption's [png]
    assert page.text.count("click it for full size") == 1
    wide = page.text.index("weights_heatmap")
    assert page.text.index("click it for full size") > wide


class Fragment(Refs):
    """Refs of an HTML fragment, and its text."""

    def __init__(self, fragment: str) -> None:
        super().__init__()
        self.text = html.unescape(re.sub(r"<[^>]+>", " ", fragment))
        self.feed(fragment)


def test_the_report_keeps_figures_drawn_from_the_runs_files_as_they_are(tmp_path: Path, monkeypatch) -> None:
    """The figures a run drew at its end are not drawn again by its report, unless one of the files they
    come from changed, a figure is gone, or --redraw asks; the page shows them either way."""
    run = write_search_run(tmp_path / "run", nodes=2, epochs=2)
    drawn_at_end = report.plot_run(run)   # as the run's end draws them
    calls: list[str] = []
    real_save, real_cells = run_figures.save_figure, run_figures.write_cell_diagrams
    monkeypatch.setattr(run_figures, "save_figure", lambda fig, stem: calls.append(Path(stem).name) or real_save(fig, stem))
    monkeypatch.setattr(run_figures, "write_cell_diagrams",
                        lambda *a, **k: calls.append("cells") or real_cells(*a, **k))

    def drawn_by_report(**kwargs) -> list[str]:
        calls.clear()
        page = report.write_report(run, **kwargs)
        assert len(check_refs(page).imgs) == len([p for p in drawn_at_end if p.suffix == ".png"])
        return sorted(calls)

    assert drawn_by_report() == []
    everything = drawn_by_report(redraw=True)
    assert "curves" in everything and "weights_heatmap" in everything and "cells" in everything
    assert drawn_by_report() == []   # what --redraw drew is kept in turn
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text("\n".join(lines[:1]) + "\n")   # a changed source: the same instant, maybe
    assert drawn_by_report() == everything
    (run / "figures" / "weights_heatmap.png").unlink()
    assert drawn_by_report() == everything
    (run / "figures" / ".drawn.json").write_text("{torn")
    assert drawn_by_report() == everything
    copy = shutil.copytree(run, tmp_path / "copy")   # a copied run folder's figures are its own
    calls.clear()
    report.write_report(copy)
    assert calls == []


def test_the_report_of_a_run_stopped_in_its_first_epoch_says_so_and_how_to_go_on(tmp_path: Path) -> None:
    """A search stopped before its first epoch ended (no metrics row yet, a checkpoint of its steps) got a
    report with no word of it (review)."""
    import torch

    from diffnas import checkpoint

    run = write_search_run(tmp_path / "run", nodes=2, epochs=3, omit={"genotype.json", "metrics.jsonl"})
    (run / "genotypes.jsonl").unlink()
    config = json.loads((run / "config.json").read_text())
    checkpoint.save(run / "checkpoint.pt", {"epoch": 0, "step": 5, "history": torch.zeros(1)}, config)
    text = " ".join(text_of(report.write_report(run)).split())
    assert (f"epochs done 0 of 3 and 5 steps of epoch 1: the run stopped early or has not finished; if it was "
            f"interrupted, `diffnas search --resume {run}` continues it") in text


def _unused_rows(page: Path) -> dict[str, str]:
    text = page.read_text()
    return {k: why for k, why in re.findall(r'<tr class="unused"><th>([^<]+)</th><td>[^<]*<small>\(no effect: ([^<]+)\)',
                                           text)}


def _config(run: Path, command: str, cfg: object) -> None:
    from diffnas import config as config_lib

    (run / "config.json").write_text(json.dumps({"command": command, **config_lib.to_dict(cfg)}))


def test_the_config_table_marks_the_values_that_changed_nothing(tmp_path: Path) -> None:
    """A first-order DNAS run's table listed threshold 0.85, hessian fd and fd_eps 0.01 like the values
    it ran with."""
    from diffnas import config as config_lib

    run = write_search_run(tmp_path / "s", nodes=2, epochs=1)
    first = config_lib.search_config("dnas", dataset="digits")   # first order, top-2, never-flipped digits
    _config(run, "search", first)
    marked = _unused_rows(report.write_report(run))
    assert set(marked) == {"hessian", "fd_eps", "threshold", "flip"}   # xi and data_dir are None: unmarked
    assert "only second order" in marked["hessian"]
    second = config_lib.search_config("darts", dataset="cifar10", hessian="exact", arch="sigmoid")
    _config(run, "search", second)
    assert set(_unused_rows(report.write_report(run, redraw=True))) == {"fd_eps"}

    train = write_train_run(tmp_path / "t")
    _config(train, "train", config_lib.train_config(dataset="synthetic", lr_schedule="cosine"))
    assert set(_unused_rows(report.write_report(train))) == {"lr_gamma", "flip"}

    pipeline = write_pipeline_run(tmp_path / "p")
    saved = json.loads((pipeline / "config.json").read_text())
    on_cifar = config_lib.search_config("dnas", dataset="cifar10")   # flipped: no flip row is marked
    saved["search"] = {k: v for k, v in config_lib.to_dict(on_cifar).items() if k != "run_dir"}
    saved["train"] = {"lr_schedule": "cosine", "lr_gamma": 0.97, "flip": True}   # its data: the search's
    (pipeline / "config.json").write_text(json.dumps(saved))
    assert set(_unused_rows(report.write_report(pipeline))) == {"search.hessian", "search.fd_eps",
                                                                "search.threshold", "train.lr_gamma"}

    _with_config(run, unknown_key=1)   # a config this version cannot build: nothing marked, still a table
    page = report.write_report(run, redraw=True)
    assert not _unused_rows(page) and "<h3>config</h3>" in page.read_text()


def test_the_report_of_a_run_of_few_steps_an_epoch_says_its_held_out_accuracy_reads_low(tmp_path: Path) -> None:
    """The command line said so at the run's start; the report's flat validation curve said nothing."""
    from diffnas import search, search_config

    run = tmp_path / "run"
    search(search_config("darts-1st", dataset="synthetic", layers=3, channels=4, nodes=2, batch_size=16, epochs=1,
                         plots=False, run_dir=str(run)))
    text = " ".join(text_of(report.write_report(run)).split())
    assert "an epoch: the validation pass uses BatchNorm's running statistics" in text
    capped = tmp_path / "capped"   # a --max-steps check: its sample is said instead
    search(search_config("darts-1st", dataset="synthetic", layers=3, channels=4, nodes=2, batch_size=16, epochs=1,
                         max_steps=2, plots=False, run_dir=str(capped)))
    text = " ".join(text_of(report.write_report(capped)).split())
    assert "running statistics" not in text and "max_steps 2" in text


def test_a_long_run_name_wraps_instead_of_widening_the_page(tmp_path: Path) -> None:
    """A run folder named with 150 characters ran the <h1> past 1200 px: the whole page scrolled sideways."""
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium")
    run = write_search_run(tmp_path / ("a_really_long_run_name_" * 7 + "seed2"), nodes=2, epochs=1)
    page = report.write_report(run)
    measure = ('<script>window.addEventListener("load", function () { document.body.dataset.fits = '
               'String(document.documentElement.scrollWidth <= window.innerWidth); });</script></body>')

    def fits(text: str) -> str:
        return browser_data(page, text.replace("</body>", measure), "fits", tmp_path / "profile")

    text = page.read_text()
    assert fits(text) == "true"
    assert fits(text.replace("h1,h2,h3,code{overflow-wrap:anywhere}", "")) == "false"   # the control: the rule is it
