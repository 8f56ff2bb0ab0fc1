"""The progress listeners every long step reports to, and the bar the CLIs draw with them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from clgate.progress import Tally
from clgate.progress_bar import ProgressBar


@given(st.lists(st.lists(st.integers(1, 5), max_size=6), min_size=1, max_size=4))
def test_a_tally_over_phases_never_runs_backwards_and_ends_at_its_total(phases: list[list[int]]) -> None:
    seen: list[tuple[int, int]] = []
    tally = Tally(lambda done, total: seen.append((done, total)))
    parts = [(tally.part(sum(steps)), steps) for steps in phases]  # sizes known up front
    for report, steps in parts:
        done = 0
        for step in steps:
            done += step
            report(done, sum(steps))
    grand = sum(map(sum, phases))
    assert all(total == grand for _, total in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert not seen or seen[-1] == (grand, grand)


def test_a_bar_draws_nothing_where_stderr_is_not_a_terminal(tiny_model, tiny_lora, tmp_path) -> None:
    from clgate.audit.cli import app

    with ProgressBar("nothing to see") as bar:
        bar(1, 2)
    result = CliRunner().invoke(
        app, ["diff", "weights", str(tiny_model), str(tiny_lora), "--json", str(tmp_path / "w.json")]
    )
    assert result.exit_code == 0, result.output
    assert "largest changes" in result.stdout
    # the tables draw with box characters too: the bar would show as its description, escapes or returns
    assert not any(mark in result.output for mark in ("diffing weights", "\x1b[", "\r", "4/4"))
