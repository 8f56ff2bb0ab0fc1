"""The real thing: `clgate dashboard` on a local port, driven by headless Chromium over CDP.

Set CLGATE_SCREENSHOT_DIR to keep the screenshots (the README's come from this test).
"""

import os
import re
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args[0]} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer in {seconds} s")


@pytest.fixture
def served(dash_world, tmp_path: Path):
    port = free_port()
    clgate = Path(os.environ.get("VIRTUAL_ENV", Path(__file__).parents[2] / ".venv")) / "bin" / "clgate"
    args = [
        "dashboard",
        "--ledger",
        dash_world.ledger,
        "--trust",
        dash_world.trust,
        "--policy",
        dash_world.policy,
    ]
    server = subprocess.Popen(
        [clgate, *map(str, args), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/_stcore/health", server)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


@pytest.fixture
def browser(tmp_path: Path):
    port = free_port()
    chromium = subprocess.Popen(
        [
            CHROMIUM,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--remote-debugging-port={port}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/json/version", chromium)
        with sync_playwright() as p:
            connected = p.chromium.connect_over_cdp(f"http://127.0.0.1:{port}")
            yield connected
            connected.close()
    finally:
        chromium.terminate()
        chromium.wait(timeout=30)


@pytest.mark.browser
def test_overview_then_a_blocked_update_in_chromium(served: str, browser, dash_world, tmp_path: Path) -> None:
    shots = Path(os.environ.get("CLGATE_SCREENSHOT_DIR", tmp_path))
    page = browser.contexts[0].new_page() if browser.contexts else browser.new_page()
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(served)
    page.get_by_text("Deployed now").wait_for(timeout=60_000)
    # tables are canvas-drawn: wait for what is text
    page.get_by_text(re.compile(r"Entry \d+ at .*: promote")).wait_for(timeout=30_000)
    page.get_by_text("verified", exact=True).wait_for(timeout=30_000)
    assert page.get_by_text("Awaiting approval").count() >= 1
    page.screenshot(path=shots / "dashboard-overview.png", full_page=True)

    page.get_by_text("Update detail").first.click()
    page.get_by_text("Verdict:").wait_for(timeout=30_000)
    page.get_by_role("combobox").first.click()  # the update selector
    page.get_by_role("option", name=dash_world.ids["block"], exact=False).click()
    banner = page.get_by_text("Verdict: BLOCK")
    banner.wait_for(timeout=30_000)
    assert "was blocked by its audit" in page.inner_text("body")
    page.get_by_text("relative weight change per layer").first.wait_for(timeout=30_000)
    page.screenshot(path=shots / "dashboard-blocked-update.png", full_page=True)

    page.goto(f"{served}/?page=Drift")
    page.get_by_text("weights / max_relative_change").first.wait_for(timeout=30_000)
    page.wait_for_timeout(1000)  # let plotly finish drawing
    page.screenshot(path=shots / "dashboard-drift.png", full_page=True)
    assert all(
        (shots / f"dashboard-{n}.png").stat().st_size > 10_000
        for n in ("overview", "blocked-update", "drift")
    )
