"""The real dashboard in a real browser: `clgate dashboard` on a free port, headless Chromium over CDP.

The browser test and `docs/screenshots.py` share this, so the screenshots in the docs come from
the same walk the test checks. It needs playwright (the dev extra) and the system Chromium; it
never downloads a browser. Not re-exported by `clgate.dashboard`: the app must not need playwright.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from playwright.sync_api import Browser, Page, sync_playwright

from clgate.errors import ClgateError

CHROMIUM = Path("/usr/bin/chromium")
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
VIEWPORT = {"width": 1400, "height": 1000}
# Drawn and final: the script run is over, nothing is stale or still loading (lazy widgets show a
# skeleton first), every plotly chart has its SVG, and the ledger is no longer being verified.
SETTLED = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')];
    return app !== null && app.dataset.testScriptState === "notRunning"
        && document.querySelector('[data-stale="true"], [data-testid^="stSkeleton"]') === null
        && charts.every((chart) => chart.querySelector(".main-svg") !== null)
        && !document.body.innerText.includes("Verifying the ledger");
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    """Poll `url` until it answers; a process that died meanwhile fails at once, not at the deadline."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ClgateError(f"{process.args[0]} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise ClgateError(f"{url} did not answer in {seconds} s")


@contextmanager
def serve_dashboard(ledger: str | Path, trust: Path) -> Iterator[str]:
    """`clgate dashboard` without --users (read-only, no login); yields its URL, stops it after."""
    port = free_port()
    options = [("--ledger", ledger), ("--trust", trust), ("--port", port)]
    clgate = Path(sys.executable).parent / "clgate"  # the one installed beside this interpreter
    server = subprocess.Popen(
        [str(clgate), "dashboard", *(str(x) for flag, v in options if v is not None for x in (flag, v))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # streamlit's own children go with it
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/_stcore/health", server)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless system Chromium with a throwaway profile, driven over CDP."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="clgate-chromium-", ignore_cleanup_errors=True) as profile:
        process = subprocess.Popen(
            [
                str(CHROMIUM),
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--remote-debugging-port={port}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(f"http://127.0.0.1:{port}/json/version", process)
            with sync_playwright() as p:
                browser = p.chromium.connect_over_cdp(f"http://127.0.0.1:{port}")
                yield browser
                browser.close()
        finally:
            process.terminate()
            process.wait(timeout=30)


def new_page(browser: Browser) -> Page:
    page = browser.contexts[0].new_page() if browser.contexts else browser.new_page()
    page.set_viewport_size(VIEWPORT)
    return page


def show(page: Page, url: str) -> None:
    """Open `url` and wait until the page is drawn from the verified ledger, charts included."""
    page.goto(url)
    page.wait_for_function(SETTLED, polling=200, timeout=120_000)
    page.wait_for_timeout(1000)  # plotly draws after the script run is over


def screenshot_pages(page: Page, url: str, blocked_id: str, out: Path) -> dict[str, str]:
    """Save dashboard-{overview,blocked-update,drift}.png under `out`; returns each page's text."""
    addresses = {
        "overview": url,
        "blocked-update": f"{url}/?page=Update%20detail&update={quote(blocked_id)}",
        "drift": f"{url}/?page=Drift",
    }
    texts = {}
    for name, address in addresses.items():
        show(page, address)
        page.screenshot(path=out / f"dashboard-{name}.png", full_page=True)
        texts[name] = page.inner_text("body")
    return texts
