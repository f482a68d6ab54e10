"""Progress of long work, shown by rank 0 only.

On a terminal, one line is redrawn in place (``\\r``) as a bar; anywhere else (a log file, a
pipe, ``mpirun`` output, a batch job) plain lines are printed, at most one per 10 % of the
work, so that logs stay short. Callers report progress per unit of work they already have
(a population built, a run chunk), never per time step.

    bar = Progress("run", total=tstop, unit="ms", enabled=rank == 0)
    for t in chunks:
        ...
        bar.update(t)
    bar.done()
"""

from __future__ import annotations

import os
import sys
import time

BAR_WIDTH = 30
PLAIN_STEP = 0.10   # print a plain line every 10 % of the work
#: set to "bar", "lines" or "off" to choose instead of the guess below
MODE_ENV = "NEURODAMUS_PROGRESS"
_LAUNCHER_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_PROCID")


def is_terminal(stream) -> bool:
    """Whether to redraw a bar. Under an MPI launcher the ranks' output goes through the
    launcher (Open MPI even gives them a pseudo-terminal), so plain lines are used there."""
    mode = os.environ.get(MODE_ENV, "").lower()
    if mode in ("bar", "lines"):
        return mode == "bar"
    if any(os.environ.get(v) for v in _LAUNCHER_VARS):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _fmt_seconds(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _fmt_amount(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value:.1f}"
    return f"{value:.0f}"


class Progress:
    """A progress bar (terminal) or a few plain lines (anything else) for one piece of work."""

    def __init__(self, label: str, total: float, unit: str = "", enabled: bool = True,
                 stream=None, tty: bool | None = None):
        self.label = label
        self.total = float(total)
        self.unit = unit
        self.enabled = enabled and self.total > 0 and \
            os.environ.get(MODE_ENV, "").lower() != "off"
        self.stream = stream if stream is not None else sys.stdout
        self.tty = is_terminal(self.stream) if tty is None else tty
        self.t0 = time.perf_counter()
        self._next_plain = PLAIN_STEP
        self._drawn = False
        self._finished = False

    # -------------------------------------------------------------------------------------
    def update(self, done: float) -> None:
        if not self.enabled or self._finished:
            return
        fraction = min(max(done / self.total, 0.0), 1.0)
        if self.tty:
            self._draw(done, fraction)
        elif fraction + 1e-9 >= self._next_plain:
            self._line(done, fraction)
            while self._next_plain <= fraction + 1e-9:
                self._next_plain += PLAIN_STEP
        if fraction >= 1.0 - 1e-12:
            self.done()

    def done(self, message: str = "") -> None:
        """Finish the bar (and print ``message`` on its own line if given)."""
        if not self.enabled or self._finished:
            return
        self._finished = True
        if self.tty and self._drawn:
            self.stream.write("\n")
        if message:
            self.stream.write(message + "\n")
        self.stream.flush()

    # -------------------------------------------------------------------------------------
    def _text(self, done: float, fraction: float) -> str:
        elapsed = time.perf_counter() - self.t0
        unit = f" {self.unit}" if self.unit else ""
        text = (f"{self.label}: {_fmt_amount(done, self.unit)}/"
                f"{_fmt_amount(self.total, self.unit)}{unit} ({fraction:4.0%})"
                f" {_fmt_seconds(elapsed)}")
        if 0.0 < fraction < 1.0 and elapsed > 1.0:
            text += f", ~{_fmt_seconds(elapsed / fraction - elapsed)} left"
        return text

    def _draw(self, done: float, fraction: float) -> None:
        filled = round(fraction * BAR_WIDTH)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        self.stream.write(f"\r[{bar}] {self._text(done, fraction)}\x1b[K")
        self.stream.flush()
        self._drawn = True

    def _line(self, done: float, fraction: float) -> None:
        self.stream.write(self._text(done, fraction) + "\n")
        self.stream.flush()


class Counter:
    """Progress over a known number of items (cells, synapses) reported in batches."""

    def __init__(self, label: str, total: int, enabled: bool = True, stream=None, tty=None):
        self._progress = Progress(label, total, "", enabled, stream, tty)
        self.count = 0

    def add(self, n: int) -> None:
        self.count += n
        self._progress.update(self.count)

    def done(self, message: str = "") -> None:
        self._progress.done(message)


__all__ = ["MODE_ENV", "Counter", "Progress", "is_terminal"]
