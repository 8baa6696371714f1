"""Progress lines for the terminal: a redrawn bar on a tty, plain lines elsewhere.

Logs and CI capture stdout, where carriage returns make a mess; there the same
information comes as one line per change of node (or per 25 % of a long step loop).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TextIO

BAR_WIDTH = 24


@dataclass
class ProgressLine:
    """One live line per image: ``label  [#####   ]  45%  node 3 KSampler 2/4``."""

    label: str
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    tty: bool | None = None
    _last_plain: tuple[str | None, int] = (None, -1)
    _drawn: bool = False

    def __post_init__(self) -> None:
        if self.tty is None:
            self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def update(self, fraction: float, detail: str = "", *, node: str | None = None) -> None:
        """Show ``fraction`` (0..1) with a detail such as ``node 3 (KSampler) 2/4``."""
        percent = int(round(fraction * 100))
        if self.tty:
            filled = int(fraction * BAR_WIDTH)
            bar = "#" * filled + " " * (BAR_WIDTH - filled)
            self.stream.write(f"\r{self.label} [{bar}] {percent:3d}%  {detail[:60]:<60}")
            self._drawn = True
        else:
            key = (node, percent // 25)
            if key == self._last_plain:
                return
            self._last_plain = key
            self.stream.write(f"{self.label} {percent:3d}% {detail}\n")
        self.stream.flush()

    def done(self, text: str) -> None:
        """End the line with a final word (``done``, ``failed``...)."""
        if self.tty and self._drawn:
            self.stream.write("\r\x1b[2K")
        self.stream.write(f"{self.label} {text}\n")
        self.stream.flush()
