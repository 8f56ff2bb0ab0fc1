"""The first draw of a ledger state is a bare read with every action disabled; verification follows."""

from clgate.audit.cli import main
from clgate.dashboard import load_snapshot, open_view, parse_config, read_view
from clgate.dashboard.context import Context
from clgate.dashboard.users import load_users
from clgate.ledger import Ledger

from .conftest import flip_decision


def _context(world, view) -> Context:
    config = parse_config(
        ["--ledger", str(world.ledger), "--trust", str(world.trust), "--users", str(world.users)]
    )
    return Context(config, view, load_users(world.users)["alice"])


def test_a_pending_view_shows_the_ledger_but_signs_nothing(dash_world) -> None:
    view = read_view(str(dash_world.ledger), dash_world.trust)
    assert view.pending and not view.verified and view.problems == []
    with Ledger.open(dash_world.ledger) as ledger:
        assert (view.size, view.root) == (len(ledger), ledger.root().hex())
    assert dash_world.ids["review"] in view.state.updates and len(view.entries) == view.size
    pending = "the ledger is still being verified; no action can be signed on it yet"
    assert all(_context(dash_world, view).refusal(a) == pending for a in ("approve", "promote", "rollback"))
    verified = open_view(str(dash_world.ledger), dash_world.trust)
    assert verified.verified and _context(dash_world, verified).refusal("promote") is None


def test_a_tampered_ledger_reads_as_pending_then_fails(dash_world) -> None:
    index = flip_decision(dash_world.ledger, dash_world.ids["block"])
    snapshot = load_snapshot(str(dash_world.ledger), dash_world.trust)
    assert (
        snapshot.view.pending and snapshot.view.state.updates[dash_world.ids["block"]].decision == "promote"
    )
    view = snapshot.verify()
    assert not view.pending and not view.verified
    assert any(p.startswith(f"entry {index}: signature does not verify") for p in view.problems)
    assert load_snapshot(str(dash_world.ledger), dash_world.trust).view is view  # verified once, then cached
    assert _context(dash_world, view).refusal("promote") == (
        "the ledger fails verification; no action can be signed on it"
    )


def test_verification_must_cover_exactly_what_was_drawn(dash_world) -> None:
    """An entry appended between the draw and the verification fails it: the page shows older bytes."""
    from clgate.dashboard.data import verify_view

    drawn = read_view(str(dash_world.ledger), dash_world.trust)
    args = ["--ledger", str(dash_world.ledger), "--trust", str(dash_world.trust)]
    assert main(["approve", dash_world.ids["review"], *args, "--key", str(dash_world.keys["auditor"])]) == 0
    view = verify_view(drawn, dash_world.trust)
    assert view.problems == ["log: the ledger changed while this page was drawn; reload the page"]
    assert not view.verified
