"""The card's percentage follows the clock between the service's reports, never goes
back, and shows an ETA from the measured pace (pure)."""

from __future__ import annotations

from ui.eta import CAP, Shown, eta_text, shown


def run(reports: list[tuple[float, float]], until: float, tick: float = 0.5) -> list[float]:
    """The shown fraction every ``tick`` seconds for reports (time, fraction)."""
    state: Shown | None = None
    out = []
    t = 0.0
    while t <= until:
        reported = max([f for at, f in reports if at <= t], default=0.0)
        state = shown(state, reported, t)
        out.append(state.fraction)
        t += tick
    return out


def test_a_long_node_without_reports_moves_with_the_clock() -> None:
    """A sampler reports 4 steps over 8 s (2/3 of the weight), then a decode runs 4 s
    silently: the bar keeps within 20 points of the share of time elapsed."""
    reports = [(2.0 * k, k / 6) for k in range(1, 5)] + [(12.0, 1.0)]
    fractions = run(reports, until=12.0)
    assert fractions == sorted(fractions)
    for n, fraction in enumerate(fractions):
        assert abs(fraction - (n * 0.5) / 12.0) <= 0.2, (n, fraction)


def test_the_clock_never_runs_far_past_the_latest_report() -> None:
    fractions = run([(1.0, 0.1)], until=60.0)
    assert max(fractions) <= 0.1 + 0.25 and max(fractions) <= CAP


def test_the_eta_comes_from_the_measured_pace() -> None:
    state = shown(None, 0.25, 5.0)
    assert state.eta_s == 15.0 and eta_text(state) == " · about 15 s left"
    assert eta_text(shown(None, 0.0, 5.0)) == ""
    assert eta_text(Shown(eta_s=600.0)) == " · about 10 min left"


def test_a_lower_report_does_not_move_the_bar_back() -> None:
    first = shown(None, 0.5, 5.0)
    assert shown(first, 0.3, 6.0).fraction >= first.fraction
