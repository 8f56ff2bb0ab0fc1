"""The dashboard screenshots in the docs, taken from the real app on a real ledger (the demo's).

    python docs/screenshots.py --ledger L --trust T --out docs/images

Starts `clgate dashboard` read-only on the ledger, drives headless Chromium through the same walk
as tests/dashboard/test_dashboard_browser.py and saves dashboard-overview.png,
dashboard-blocked-update.png (the blocked update whose audit found a backdoor trigger) and
dashboard-drift.png. The drift charts draw the thresholds of the policy each audit judged by.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from clgate.audit.journal import Journal
from clgate.dashboard.browser import chromium, new_page, screenshot_pages, serve_dashboard
from clgate.errors import ClgateError, InputError
from clgate.ledger import Finding


def triggered_block(ledger: str, trust: Path) -> tuple[str, Finding]:
    """The latest blocked update that failed on a trigger, and that finding: what is worth showing."""
    with Journal.open(ledger, None, trust) as journal:
        updates = sorted(journal.state().updates.values(), key=lambda u: -u.proposed_index)
    for u in updates:
        for f in u.findings:
            if u.decision == "block" and f.status.value == "fail" and "trigger" in (f.metric or ""):
                return u.update_id, f
    raise InputError(f"{ledger}: no blocked update failed on a trigger (run `clgate demo`)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ledger", required=True)
    parser.add_argument("--trust", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "images")
    args = parser.parse_args()
    try:
        blocked, finding = triggered_block(args.ledger, args.trust)
    except ClgateError as exc:
        raise SystemExit(str(exc)) from None
    args.out.mkdir(parents=True, exist_ok=True)
    with serve_dashboard(args.ledger, args.trust) as url, chromium() as browser:
        texts = screenshot_pages(new_page(browser), url, blocked, args.out)
    shows = {
        "overview": "\nverified\n",
        "blocked-update": f"update {blocked} was blocked by its audit",
        "drift": f"{finding.check} / {finding.metric}",
    }
    for name, wanted in shows.items():
        if wanted not in texts[name]:
            raise SystemExit(f"dashboard-{name}.png does not show {wanted!r}: look at it")
        print(args.out / f"dashboard-{name}.png")


if __name__ == "__main__":
    main()
