"""The terminal face of `clgate.progress`, for the command-line modules only.

One transient bar on stderr, drawn only when stderr is a terminal and the command was not asked
for machine output: CI logs, pipes and JSON on stdout never see a control character.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class ProgressBar:
    """A bar that an `Advance` listener moves: `with ProgressBar("diffing weights") as bar: diff(advance=bar)`.

    Until the first report it pulses (the step's size is not known yet), so it also replaces a spinner.
    """

    def __init__(self, description: str, *, show: bool = True) -> None:
        stderr = Console(stderr=True)
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=stderr,
            transient=True,
            disable=not (show and stderr.is_terminal),
        )
        self._task = self._bar.add_task(description, total=None)

    def __enter__(self) -> ProgressBar:
        self._bar.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._bar.stop()

    def __call__(self, done: int, total: int) -> None:
        self._bar.update(self._task, completed=done, total=total)

    def describe(self, description: str) -> None:
        """Name the phase the step is in now (a suite, a model)."""
        self._bar.update(self._task, description=description)
