"""The HTML report in a real browser: headless Chromium (Debian's ``chromium``) dumps the DOM and
takes screenshots (desktop and phone width). Skips, saying why, when Chromium is not installed."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from reports.queries import build_report
from reports.render import render
from reports.sample import NOW, seed_demo
from reports.scope import Scope

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (apt-get install chromium); HTML browser checks skipped",
)
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )


def _png_pixels(path: Path) -> tuple[int, int, bytes]:
    """Width, height and the raw (filtered) scanlines of a PNG, with the standard library only."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, zlib.decompress(idat)


@pytest.fixture(scope="module")
def html_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    engine = create_engine(f"sqlite:///{tmp / 'store.db'}")
    seed_demo(engine, NOW)
    report = build_report(engine, Scope.company(), now=NOW, timezone="Asia/Shanghai", locale="en")
    engine.dispose()
    path = tmp / "report.html"
    path.write_text(render(report, "html"), encoding="utf-8")
    return path


def test_dom_has_the_key_numbers_and_no_injected_script(html_file: Path, tmp_path: Path) -> None:
    dom = _chromium(tmp_path, "--dump-dom", html_file.as_uri()).stdout
    assert re.search(r'id="open-tasks"><div class="num">7<', dom)
    assert re.search(r'id="overdue"><div class="num">2<', dom)
    assert re.search(r'id="on-time"><div class="num">66\.7%<', dom)
    assert "Acme rollout" in dom and "华为 expansion" in dom
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom  # shown as text
    assert "<script" not in dom  # and never became an element
    assert dom.count("<svg") == 2


@pytest.mark.parametrize("size", ["1280,2000", "390,1800"], ids=["desktop", "phone"])
def test_screenshot_is_not_blank(html_file: Path, tmp_path: Path, size: str) -> None:
    shot = tmp_path / f"report-{size.replace(',', 'x')}.png"
    _chromium(tmp_path, f"--screenshot={shot}", f"--window-size={size}", html_file.as_uri())
    width, height, raw = _png_pixels(shot)
    assert (width, height) == tuple(int(x) for x in size.split(","))
    # a blank page compresses to a handful of distinct bytes; a rendered report has text and colour
    assert len(set(raw)) > 64
    assert raw.count(raw[1:2]) / len(raw) < 0.95
