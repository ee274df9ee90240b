"""`dlx report` and `dlx reproduce all`: the report is built from run directories alone, as Markdown and as
one self-contained HTML file that a real browser renders without errors."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from dlx.claims import claim
from dlx.runs import write_json

PNG = base64.b64decode(  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def fake_run(d: Path, kind: str, claims: list[dict], status: str = "completed") -> Path:
    d.mkdir(parents=True)
    write_json(d / "summary.json", {"kind": kind, "status": status, "metrics": {}, "wall_s": 75.0,
                                    "env": {"dlx": "0.1.0", "torch": "2.x", "device": "cpu", "threads": 1},
                                    "claims": claims})
    pd.DataFrame({"bn": [True, False], "lr": [0.1, 0.01], "test_acc": [0.95, 0.9]}).to_csv(d / "results.csv",
                                                                                          index=False)
    (d / "accuracy_vs_lr.png").write_bytes(PNG)
    return d


CLAIMS = [claim("a", "BN allows larger lrs", {"BN": 1.0, "no BN": 0.03}, "ratio >= 10", "1000x", holds=True),
          claim("b", "a claim that fails <here> & escapes", 0.5, "x > 1", "2", holds=False),
          claim("c", "not at this scale", None, "needs CIFAR", "93%", why="needs paper scale")]


def test_report_from_run_directories(run_cli, tmp_path):
    tree = tmp_path / "all"
    fake_run(tree / "batchnorm", "batchnorm", CLAIMS)
    fake_run(tree / "fp8", "fp8", CLAIMS[:1])
    (tree / "notes").mkdir()  # not a run: ignored
    rc, out, err = run_cli("report", str(tree))
    assert rc == 0, err
    md = (tree / "report.md").read_text()
    assert "2 papers, 4 claims: 2 hold, 1 fail, 0 inconclusive, 1 not shown, 0 built in." in md
    assert "| batchnorm | BN allows larger lrs | BN 1, no BN 0.03 | 1000x | ratio >= 10 | - | holds |" in md
    assert "not shown (needs paper scale)" in md and "![accuracy_vs_lr](batchnorm/accuracy_vs_lr.png)" in md
    html = (tree / "report.html").read_text()
    assert html.count("<tr class='claim'>") == 4 and "&lt;here&gt; &amp; escapes" in html
    assert "data:image/png;base64," in html and "<script" not in html and "http" not in html.lower()
    assert "href='batchnorm'" in html  # each section links to its run directory


@pytest.mark.parametrize("args, needle", [
    (["report", "/nonexistent"], "is not a directory"),
    (["reproduce", "all", "--only", "nope"], "unknown paper 'nope' in --only"),
    (["reproduce", "all", "--only", "fp8", "--skip", "fp8"], "leave no paper"),
    (["reproduce", "fp8", "--only", "fp8"], "go with 'dlx reproduce all'"),
    (["reproduce", "all", "seed=1"], "every paper's default"),
])
def test_bad_input(run_cli, tmp_path, args, needle):
    rc, _, err = run_cli(*args, *(["--out", str(tmp_path)] if args[0] == "reproduce" else []))
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1, err


def test_report_of_a_folder_without_runs(run_cli, tmp_path):
    rc, _, err = run_cli("report", str(tmp_path))
    assert rc == 2 and "holds no paper run" in err


def test_reproduce_all_skips_finished_papers_and_goes_on_after_a_failure(tmp_path, monkeypatch):
    """The suite on two stand-in papers: one fails, the other completes; a re-run skips the finished one."""
    from dlx.claims.report import build_report
    from dlx.claims.suite import run_all
    from dlx.registry import Experiment

    calls = []

    class Fake(Experiment):
        def run(self, cfg, run):
            calls.append(self.name)
            if self.name == "fp8" and len(calls) == 1:
                raise RuntimeError("out of luck")
            run.summary("completed", {}, claims=CLAIMS[:1])

    monkeypatch.setattr("dlx.config.compose", lambda name, ov=(): {"name": name})
    papers = [Fake(name="fp8", impl="x", title="t"), Fake(name="batchnorm", impl="x", title="t")]
    run_all(tmp_path, papers, lambda s: None)
    assert calls == ["fp8", "batchnorm"]
    assert json.loads((tmp_path / "fp8" / "summary.json").read_text())["status"] == "failed"
    run_all(tmp_path, papers, lambda s: None)
    assert calls == ["fp8", "batchnorm", "fp8"]  # batchnorm was done: skipped
    _, _, runs = build_report([tmp_path], tmp_path)
    assert {r.name for r in runs} == {"fp8", "batchnorm"} and all(r.status == "completed" for r in runs)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt install chromium; .ci/run does)")
def test_report_renders_in_a_real_browser(tmp_path):
    """Headless Chromium opens report.html: no console errors, every image loaded, one row per claim."""
    pytest.importorskip("playwright", reason="playwright (pip) drives the browser: pip install -e .[dev]")
    from playwright.sync_api import sync_playwright

    from dlx.claims.report import build_report

    fake_run(tmp_path / "runs" / "batchnorm", "batchnorm", CLAIMS)
    fake_run(tmp_path / "runs" / "idefender", "idefender", CLAIMS[1:])
    _, page_path, _ = build_report([tmp_path / "runs"], tmp_path / "runs")
    errors = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(page_path.resolve().as_uri())
        page.wait_for_load_state("load")
        images = page.eval_on_selector_all("img", "els => els.map(e => e.complete && e.naturalWidth)")
        rows = page.locator("#claims tbody tr").count()
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert errors == []
    assert images and all(w and w > 0 for w in images)
    assert rows == len(CLAIMS) + len(CLAIMS[1:])
    assert (tmp_path / "report.png").stat().st_size > 10_000
