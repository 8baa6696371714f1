"""The percentage a job card shows, and its ETA, from the service's progress and the time
the job has run (pure).

The service's fraction moves when ComfyUI reports: at each sampler step and each node's
end. A node without steps (a VAE decode, a model load) can take seconds with no report,
and the bar would stand still. So the card also extrapolates from the measured pace:
the time it took to reach the latest reported fraction gives the total to expect, and
the bar follows the clock towards it, never back, and never further past the latest
report than that report's own step: the next report is about one step away. The first
reports (a loader, the text encoders) come quickly and weigh little, so the pace they give
is too fast for a long sampler; a fixed lead let a one-minute CPU image show 37 % at 3 s.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_MEASURED = 0.02  # below this fraction the pace is not measured yet
# Before the first report (dispatch, a cold model load) the bar moves as if the image took
# PRIOR_TOTAL_S, up to PRIOR_CAP: a guess, so the wait does not look frozen. A short guess
# errs both ways by little: a quick image whose first report comes late (1.7 s of 4.3 on
# a loaded box) is not left far behind, and a slow one is led by at most PRIOR_CAP.
PRIOR_TOTAL_S = 5.0
PRIOR_CAP = 0.3
MAX_AHEAD = 0.25  # the clock never runs further ahead of the latest report than this
MIN_AHEAD = 0.05  # ... and may always run this far ahead (a report of a tiny step)
CAP = 0.97  # only the service's own report says "done"


@dataclass(frozen=True)
class Shown:
    """What a card showed last: its fraction, and the latest report with its time."""

    fraction: float = 0.0
    reported: float = 0.0  # the latest fraction the service reported
    reported_at: float = 0.0  # seconds since the job was created, when it was first seen
    eta_s: float | None = None  # seconds left, once the pace is measured
    step: float = 0.0  # how far the latest report moved the fraction


def shown(previous: Shown | None, reported: float, elapsed: float) -> Shown:
    """The next ``Shown`` for a running job: ``reported`` is the service's fraction (0..1),
    ``elapsed`` the seconds since the job was created."""
    last = previous or Shown()
    if previous is None or reported > last.reported:
        last = Shown(last.fraction, reported, elapsed, step=reported - last.reported)
    estimate, eta = min(elapsed / PRIOR_TOTAL_S, PRIOR_CAP), None
    if last.reported >= MIN_MEASURED and last.reported_at > 0:
        total = last.reported_at / last.reported
        ahead = min(max(last.step, MIN_AHEAD), MAX_AHEAD)
        estimate = min(elapsed / total, last.reported + ahead, CAP)
        eta = max(total - elapsed, 0.0)
    fraction = min(max(last.fraction, reported, estimate), 1.0)
    return Shown(fraction, last.reported, last.reported_at, eta, last.step)


def eta_text(state: Shown) -> str:
    """``about 12 s left`` (or minutes), or nothing before the pace is measured."""
    if state.eta_s is None:
        return ""
    seconds = round(state.eta_s)
    if seconds >= 90:
        return f" · about {round(seconds / 60)} min left"
    return f" · about {max(seconds, 1)} s left"
