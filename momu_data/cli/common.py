"""What every momu command shares: the stderr console, one-line errors, progress bars, and
the logging setup (library modules log through `logging`; the commands show those records
on the console through rich)."""

from __future__ import annotations

import logging
from typing import NoReturn

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True, soft_wrap=True)  # soft wrap: a one-line error stays one line
LOGGERS = ("momu_data", "momu_models")


def fail(msg: str, code: int = 2) -> NoReturn:
    """End the command with a one-line reason (no traceback)."""
    console.print(f"[red]error:[/red] {escape(str(msg))}")
    raise typer.Exit(code)


def progress() -> Progress:
    """A progress bar on the console: description, bar, done/total, elapsed, remaining."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def setup_logging(level: int = logging.INFO) -> None:
    """Show the library's log records (INFO and up) on the console; once per process."""
    handler = RichHandler(
        console=console, show_time=False, show_path=False, show_level=False, markup=False, rich_tracebacks=False
    )
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(h, RichHandler) for h in logger.handlers):
            logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
