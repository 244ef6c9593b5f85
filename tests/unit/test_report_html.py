"""The HTML report, compare and check-golden on synthetic folders (ours and DLIO's), and their failure paths."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import sys

import numpy as np
import pytest
import yaml

from dlio_core.report.cli import main as report_main
from dlio_core.report.compare import compare_runs, config_differences
from dlio_core.report.figures import MissingPlotsExtra, require_matplotlib
from dlio_core.report.golden import Check, compare_figures, golden_figures
from dlio_core.report.html import FIGURES, draw_figures, render_page, write_report
from dlio_core.report.rundata import ReportInputError, RunData
from dlio_core.report.steps import read_steps
from dlio_core.report.tabular import emit, run_summary

from ._report_folders import BATCH, EPOCHS, SAMPLE_BYTES, STEPS, dl_driver_folder, dlio_folder

ALL_IDS = {"fig-timeline", "fig-latency-cdf", "fig-epochs", "fig-bandwidth", "fig-rank-spread", "fig-checkpoints"}
PNG = b"\x89PNG\r\n\x1a\n"


def _images(page: str) -> dict[str, bytes]:
    """figure id -> the PNG its <img> carries."""
    found = re.findall(r'<figure id="([^"]+)"><img alt="[^"]*" src="data:image/png;base64,([^"]+)">', page)
    return {fid: base64.b64decode(data) for fid, data in found}


def test_step_file_round_trip(tmp_path):
    dl_driver_folder(tmp_path, ranks=1)
    data = read_steps(str(tmp_path / "0_steps.npz"))
    assert data["step"].size == STEPS * EPOCHS and set(data["epoch"].tolist()) == {1, 2}
    assert data["bytes_read"].sum() == STEPS * EPOCHS * BATCH * SAMPLE_BYTES
    assert np.isnan(data["h2d_s"]).all() and np.isfinite(data["io_s"]).all()  # None -> NaN
    assert data["ckpt_kind"].tolist() == [0, 0, 1] and data["ckpt_rank_bytes"].tolist() == [2**30] * 3


def test_dl_driver_folder_draws_every_figure(tmp_path):
    dl_driver_folder(tmp_path)
    path, figures = write_report(str(tmp_path))
    page = open(path, encoding="utf-8").read()
    assert {f.id for f in figures} == ALL_IDS
    images = _images(page)
    assert set(images) == ALL_IDS
    for fid, png in images.items():
        assert png.startswith(PNG) and len(png) > 1000, fid
    assert "-omitted\"" not in page


def test_page_is_self_contained(tmp_path):
    dl_driver_folder(tmp_path)
    page = open(write_report(str(tmp_path))[0], encoding="utf-8").read()
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert not re.search(r'(src|href)="(?!data:)', page)  # no fetch: every source is inline
    assert "url(" not in page


def test_dlio_folder_draws_what_its_files_hold_and_says_what_it_cannot(tmp_path):
    dlio_folder(tmp_path)
    run = RunData.load(str(tmp_path))
    assert run.producer == "dlio"
    table = run.steps("train")
    assert len(table) == 2 * EPOCHS * STEPS and not table.exact
    assert not table.measured("io_s") and table.measured("wait_s")
    records = run.checkpoint_records()
    assert [(r["kind"], r["index"]) for r in records] == [("save", 1), ("save", 2)]
    assert records[0]["rank_GiB_per_s"] == {0: 2.0, 1: 3.0}
    path, figures = write_report(str(tmp_path))
    page = open(path, encoding="utf-8").read()
    drawn = {f.id for f in figures if f.png is not None}
    assert drawn == ALL_IDS - {"fig-bandwidth"}
    assert set(_images(page)) == drawn
    assert 'id="fig-bandwidth-omitted"' in page and "DLIO&#x27;s files hold no bytes per step" in page


def test_rank_spread_names_the_slowest_rank(tmp_path):
    from dlio_core.report.figures import _per_step_across_ranks

    dl_driver_folder(tmp_path, ranks=3)
    _, lo, med, hi, slowest = _per_step_across_ranks(RunData.load(str(tmp_path)).steps("train"))
    assert lo.size == EPOCHS * STEPS
    assert slowest[3] == 2 and hi[3] > med[3] > lo[3]  # step 4 of epoch 1: rank 2 is 20 ms late


def test_checkpoint_rates_per_rank_come_from_each_ranks_file(tmp_path):
    dl_driver_folder(tmp_path, ranks=2)
    first = RunData.load(str(tmp_path)).checkpoint_records()[0]
    assert first["rank_GiB_per_s"] == {0: pytest.approx(1.0), 1: pytest.approx(0.5)}


def test_figures_without_data_say_why(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({"metric": {}, "num_accelerators": 1}))
    notes = {f.id: f.note for f in draw_figures(RunData.load(str(tmp_path)))}
    assert notes["fig-epochs"] == "no training epochs in summary.json"
    assert notes["fig-checkpoints"] == "this run took no checkpoints"
    page = render_page(RunData.load(str(tmp_path)), draw_figures(RunData.load(str(tmp_path))))
    assert page.count('class="omitted"') == len(FIGURES)


def test_not_an_output_folder_is_one_line_exit_2(tmp_path, capsys):
    assert report_main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not a DLIO or dl-driver output folder" in err
    with pytest.raises(ReportInputError, match="not a folder"):
        RunData.load(str(tmp_path / "missing"))


def test_missing_matplotlib_names_the_extra(tmp_path, monkeypatch, capsys):
    dl_driver_folder(tmp_path, ranks=1)
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(MissingPlotsExtra, match=r"pip install 'dl-driver\[plots\]'"):
        require_matplotlib()
    assert report_main(["report", str(tmp_path)]) == 2
    assert "pip install 'dl-driver[plots]'" in capsys.readouterr().err
    assert not (tmp_path / "report.html").exists()


def test_report_output_and_format_json(tmp_path, capsys):
    dl_driver_folder(tmp_path / "run", ranks=1)
    target = tmp_path / "page.html"
    assert report_main(["report", str(tmp_path / "run"), "--output", str(target), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["reports"][0]["report"] == str(target) and set(out["reports"][0]["figures"]) == ALL_IDS
    assert report_main(["report", str(tmp_path / "run"), str(tmp_path / "run"), "--output", str(target)]) == 2


def test_compare_ratios_and_config_differences(tmp_path):
    a = dl_driver_folder(tmp_path / "a", threads=1)
    b = dl_driver_folder(tmp_path / "b", threads=4, rate_scale=2.0)
    c = dlio_folder(tmp_path / "c")
    cmp = compare_runs([str(a), str(b), str(c)])
    ratios = cmp.ratios()
    assert ratios["train_throughput_mean_samples_per_second"][:2] == [1.0, pytest.approx(2.0)]
    assert cmp.figures[2]["producer"] == "dlio" and cmp.figures[0]["producer"] == "dl-driver"
    assert cmp.config_differences == {"reader.read_threads": [1, 4, 1]}
    text = cmp.text()
    assert "(x2)" in text and "reader.read_threads: 1 | 4 | 1" in text
    assert config_differences([{"a": {"b": 1}}, {"a": {"b": 1}, "c": 2}]) == {"c": [None, 2]}


def test_compare_cli_formats_and_html(tmp_path, capsys):
    a, b = dl_driver_folder(tmp_path / "a"), dl_driver_folder(tmp_path / "b", rate_scale=0.5)
    assert report_main(["compare", str(a), str(b), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in data["runs"]] == ["a", "b"]
    assert data["runs"][1]["ratio_to_first"]["train_throughput_mean_samples_per_second"] == pytest.approx(0.5)
    page = tmp_path / "cmp.html"
    assert report_main(["compare", str(a), str(b), "--format", "csv", "--html", str(page)]) == 0
    captured = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    assert [r["name"] for r in rows] == ["a", "b"] and float(rows[1]["ratio.train_throughput_mean_samples_per_second"]) == 0.5
    assert "wrote" in captured.err  # human text off stdout
    assert set(_images(page.read_text())) == {"fig-compare"}
    assert report_main(["compare", str(a)]) == 2


def _goldens(root, run_folder, **change):
    figures = golden_figures(RunData.load(str(run_folder)))
    figures.update(change)
    (root / "g").mkdir(parents=True)
    (root / "g" / "golden.json").write_text(json.dumps({"name": "g", "workload": "unet3d_h100", "figures": figures}))
    (root / "specs.yaml").write_text(yaml.safe_dump({"g": {"workload": "unet3d_h100", "overrides": []}}))
    (root / "tolerances.yaml").write_text(yaml.safe_dump({
        "exact": ["epochs", "train_steps_per_epoch", "train_bytes_read_per_epoch"],
        "compute_bound": {"train_au_mean_percentage": 10},
        "relative": {"train_throughput_mean_samples_per_second": 0.05}}))
    return root


def test_golden_figures_are_exact_counts(tmp_path):
    figures = golden_figures(RunData.load(str(dl_driver_folder(tmp_path, ranks=2))))
    assert figures["train_steps_per_epoch"] == [2 * STEPS] * EPOCHS
    assert figures["train_bytes_read_per_epoch"] == [2 * STEPS * BATCH * SAMPLE_BYTES] * EPOCHS
    assert figures["save_checkpoints"] == 2 and figures["save_checkpoint_bytes"] == [2 * 2**30] * 2


def test_check_golden_passes_and_fails_with_distances(tmp_path, capsys):
    run = dl_driver_folder(tmp_path / "run")
    goldens = _goldens(tmp_path / "goldens", run)
    assert report_main(["check-golden", str(run), "--goldens", str(goldens)]) == 0  # guessed from the workload
    assert "PASS: " in capsys.readouterr().out
    bad = _goldens(tmp_path / "bad", run, train_bytes_read_per_epoch=[1, 2],
                   train_throughput_mean_samples_per_second=50.0, train_au_mean_percentage=50.0)
    assert report_main(["check-golden", str(run), "--goldens", str(bad), "--golden", "g"]) == 1
    out = capsys.readouterr().out
    assert re.search(r"FAIL\s+train_bytes_read_per_epoch\s+exact\s+differs", out)
    assert re.search(r"FAIL\s+train_throughput_mean_samples_per_second\s+relative\s+110\.0% \(tolerance 5%\)", out)
    assert re.search(r"FAIL\s+train_au_mean_percentage\s+compute_bound\s+43\.5 \(tolerance 10\)", out)
    assert report_main(["check-golden", str(run), "--goldens", str(bad), "--exact", "--format", "json"]) == 1
    checks = json.loads(capsys.readouterr().out)["checks"]
    assert {c["kind"] for c in checks} == {"exact", "compute_bound"}  # no rates with --exact
    assert report_main(["check-golden", str(run), "--goldens", str(goldens), "--golden", "nope"]) == 2
    err = capsys.readouterr().err
    assert "--golden nope: no " in err and "goldens: g" in err


def test_compare_figures_missing_value_fails():
    checks = compare_figures({}, {"figures": {"au": 90.0}}, {"compute_bound": {"au": 5}})
    assert checks == [Check("au", "compute_bound", 90.0, None, "missing in the run", False)]


def test_emit_and_run_summary():
    out = io.StringIO()
    emit({"a": {"b": [1, 2]}}, "csv", stream=out)
    assert out.getvalue() == 'a.b\n"[1, 2]"\n'
    with pytest.raises(ValueError, match="--format xml"):
        emit({}, "xml")
    summary = {"metric": {"x": 1}, "host_cpuinfo": {"big": 1}, "epochs": 2}
    assert run_summary("/out", summary) == {"output_folder": "/out", "epochs": 2, "metric": {"x": 1}}
