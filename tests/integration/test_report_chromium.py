"""The HTML report as a browser shows it: headless Chromium (Debian's ``chromium`` package) loads the page
of a real run and of a DLIO folder; every figure is in the DOM with a PNG that decodes to a non-empty
image, the page fetches nothing, and a screenshot is not blank. Skips with the reason where no
Chromium is installed (``apt-get install -y chromium``)."""

from __future__ import annotations

import base64
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.unit._report_folders import dlio_folder

from ._cli import small_run_args

pytestmark = pytest.mark.integration

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
BROWSER = next((path for path in map(shutil.which, BROWSERS) if path), None)
needs_chromium = pytest.mark.skipif(BROWSER is None, reason="no Chromium binary (Debian: apt-get install -y chromium)")

ALL_IDS = {"fig-timeline", "fig-latency-cdf", "fig-epochs", "fig-bandwidth", "fig-rank-spread", "fig-checkpoints"}


class _Figures(HTMLParser):
    """figure id -> the src of the <img> inside it; every src/href seen."""

    def __init__(self) -> None:
        super().__init__()
        self.images: dict[str, str] = {}
        self.sources: list[str] = []
        self.ids: set[str] = set()
        self._figure: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        for key in ("src", "href"):
            if key in a:
                self.sources.append(a[key])
        if tag == "figure":
            self._figure = a.get("id")
        elif tag == "img" and self._figure:
            self.images[self._figure] = a.get("src", "")


def _browser(*args: str, tmp: Path) -> subprocess.CompletedProcess:
    cmd = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
           f"--user-data-dir={tmp / 'profile'}", "--disable-background-networking",
           "--host-resolver-rules=MAP * ~NOTFOUND", *args]  # any fetch off this machine fails
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _check_page(page: Path, tmp: Path, expect: set[str]) -> _Figures:
    done = _browser("--dump-dom", page.as_uri(), tmp=tmp)
    assert done.returncode == 0, done.stderr[-2000:]
    dom = _Figures()
    dom.feed(done.stdout)
    assert set(dom.images) == expect, sorted(dom.ids)
    for fid, src in dom.images.items():
        assert src.startswith("data:image/png;base64,"), fid
        width, height = _png_size(base64.b64decode(src.split(",", 1)[1]))
        assert width > 100 and height > 100, fid
    assert all(s.startswith("data:") for s in dom.sources)  # nothing fetched
    shot = tmp / "shot.png"
    done = _browser(f"--screenshot={shot}", "--window-size=1100,1400", page.as_uri(), tmp=tmp)
    assert done.returncode == 0 and shot.stat().st_size > 20_000, done.stderr[-2000:]
    return dom


@needs_chromium
def test_report_of_a_real_run_in_chromium(tmp_path, run_cli):
    res = run_cli("run", *small_run_args(tmp_path, "++workload.reader.data_loader=pytorch"))
    assert res.returncode == 0, res.stderr
    res = run_cli("report", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr
    assert "report.html: 5 figures (1 not drawn: see the page)" in res.stdout  # no checkpoints in this run
    dom = _check_page(tmp_path / "out" / "report.html", tmp_path, ALL_IDS - {"fig-checkpoints"})
    assert "fig-checkpoints-omitted" in dom.ids


@needs_chromium
def test_report_of_a_dlio_folder_in_chromium(tmp_path, run_cli):
    folder = dlio_folder(tmp_path / "dlio")
    res = run_cli("report", str(folder))
    assert res.returncode == 0, res.stderr
    dom = _check_page(folder / "report.html", tmp_path, ALL_IDS - {"fig-bandwidth"})
    assert "fig-bandwidth-omitted" in dom.ids


def test_browser_lookup_names_the_package():
    # The skip reason is what a user without Chromium reads: it must say what to install.
    assert "apt-get install -y chromium" in needs_chromium.kwargs["reason"]
