"""A rich progress bar (images/s, ETA) on stderr; silent when stderr is not a terminal or with --quiet."""

from __future__ import annotations

import sys


class Progress:
    def __init__(self, total: int, done: int = 0, *, enabled: bool | None = None, description: str = "labeling"):
        if enabled is None:
            enabled = sys.stderr.isatty()
        self._bar = None
        if enabled and total > 0:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, TaskProgressColumn,
                                       TextColumn, TimeRemainingColumn)

            class Rate(TextColumn):
                def render(self, task):  # images/s over the run so far
                    from rich.text import Text

                    speed = task.finished_speed or task.speed
                    return Text(f"{speed:.2f} img/s" if speed else "-- img/s")

            self._bar = RichProgress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                Rate(""), TimeRemainingColumn(), console=Console(file=sys.stderr), transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(description, total=total, completed=done)

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
