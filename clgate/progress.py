"""How far a long step has got, as counts: lower layers report, only the command line draws.

Probes, evals and training take an `Advance` listener and call it with (done, total) in units of
their own (prompts, tensors, steps). They never import a terminal library, so a CLI can draw a bar,
the gate can print a line now and then, a test can record the calls, and a library caller who
passes nothing pays nothing.
"""

from __future__ import annotations

from collections.abc import Callable

Advance = Callable[[int, int], None]


def no_progress(done: int, total: int) -> None:
    """The default listener: nobody is watching."""


class Tally:
    """Several phases of one step on one count (the parent's forward passes, then the candidate's).

    Each phase reports its own (done, total); the listener sees the sums, so a bar fills once and never
    runs backwards. Phases declared with their size up front make the total right from the start.
    """

    def __init__(self, advance: Advance) -> None:
        self._advance = advance
        self._done: list[int] = []
        self._total: list[int] = []

    def part(self, total: int = 0) -> Advance:
        """The listener for one more phase, `total` units long until it says otherwise."""
        index = len(self._done)
        self._done.append(0)
        self._total.append(total)

        def report(done: int, total: int) -> None:
            self._done[index], self._total[index] = done, total
            self._advance(sum(self._done), sum(self._total))

        return report
