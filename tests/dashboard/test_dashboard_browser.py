"""The real thing: `clgate dashboard` on a local port, driven by headless Chromium over CDP.

Set CLGATE_SCREENSHOT_DIR to keep the screenshots; the docs' come from `docs/screenshots.py`,
which takes them with the same walk on the demo's ledger.
"""

import os
import re
from pathlib import Path

import pytest

from clgate.dashboard.browser import chromium, new_page, screenshot_pages, serve_dashboard


@pytest.mark.browser
def test_overview_then_a_blocked_update_in_chromium(dash_world, tmp_path: Path) -> None:
    shots = Path(os.environ.get("CLGATE_SCREENSHOT_DIR", tmp_path))
    with (
        serve_dashboard(dash_world.ledger, dash_world.trust) as url,
        chromium() as browser,
    ):
        assert _listening_on(int(url.rsplit(":", 1)[1])) == {"127.0.0.1"}  # not on every interface
        texts = screenshot_pages(new_page(browser), url, dash_world.ids["block"], shots)

    overview = texts["overview"]
    assert re.search(r"^verified$", overview, re.M) and "Awaiting approval" in overview
    assert re.search(
        r"default: entry \d+ at .*: promote", overview
    )  # the last scheduled run of each deployment
    blocked = texts["blocked-update"]
    assert (
        "Decision: BLOCK" in blocked
        and f"update {dash_world.ids['block']} was blocked by its audit" in blocked
    )
    assert "relative weight change per layer" in blocked
    assert "weights / max_relative_change" in texts["drift"]
    assert all((shots / f"dashboard-{n}.png").stat().st_size > 10_000 for n in texts)


def _listening_on(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on `port`, from the kernel's own table."""
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            host, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                addresses.add(
                    ".".join(str(b) for b in reversed(bytes.fromhex(host))) if len(host) == 8 else host
                )
    return addresses
