"""`report.html` opened from disk in headless Chromium: it renders, and logs nothing.

Skipped where Debian's chromium is not installed (`.ci/run` installs it when apt works).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from lmclassify.html_report import write_report
from test_report import LABELS, write_fake_run

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
)

# A line Chromium logs for the page's console (uncaught errors and console.* calls alike):
#   [pid:tid:time:INFO:CONSOLE:1] "Uncaught Error: x", source: file:///.../report.html (1)
CONSOLE = re.compile(r":CONSOLE[:\]]|Uncaught|\"source\": \"javascript\"")


def _chromium(tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess:
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        *args,
        page.as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


def _console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if CONSOLE.search(line)]


def _screenshot(tmp_path: Path, page: Path) -> tuple[Path, str]:
    shot = tmp_path / "shot.png"
    done = _chromium(
        tmp_path,
        page,
        "--enable-logging=stderr",
        "--v=0",
        f"--screenshot={shot}",
        "--window-size=1280,2000",
    )
    return shot, done.stderr


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("browser") / "run"
    write_fake_run(run_dir)
    write_report(run_dir)
    return run_dir / "report.html"


def test_the_page_renders_every_row_and_the_table(tmp_path, report_html):
    done = _chromium(tmp_path, report_html, "--dump-dom")

    assert done.returncode == 0, done.stderr[-2000:]
    assert '<table class="sortable">' in done.stdout and "</table>" in done.stdout
    for label in LABELS:
        assert label in done.stdout
    assert done.stdout.count('src="data:image/png;base64,') == 8
    assert '<html lang="en" class="sortable-tables">' in done.stdout  # the script ran to its end


def test_the_page_logs_no_console_error(tmp_path, report_html):
    shot, stderr = _screenshot(tmp_path, report_html)

    assert shot.is_file() and shot.stat().st_size > 10_000, stderr[-2000:]
    assert _console_lines(stderr) == []


def test_the_console_check_catches_a_script_error(tmp_path):
    """Guards the test above: Chromium's log format must still be what it looks for."""
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><p>broken</p><script>throw new Error('x')</script>", encoding="utf-8"
    )

    shot, stderr = _screenshot(tmp_path, page)

    assert shot.is_file()
    assert any("Uncaught Error: x" in line for line in _console_lines(stderr)), stderr[-2000:]
