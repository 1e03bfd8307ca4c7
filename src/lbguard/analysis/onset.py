"""Change points in the timeline: when the distribution over servers or the error rate
changed, and whether each change is an onset or a recovery.

Detection runs PELT (Killick, Fearnhead and Eckley 2012, as implemented by the
``ruptures`` package) with the L2 cost, which finds shifts in the mean of a multivariate
series. The series has one row per window: each server's share of the window's requests
and the window's error rate. The penalty scales with the noise variance estimated from
first differences. Neighbouring segments whose difference is under the effect-size floors
of `OnsetOptions`, or not significant by a chi-square test, are then merged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import ruptures  # type: ignore[import-untyped]
import scipy.stats  # type: ignore[import-untyped]

from lbguard.analysis.result import (
    NO_SERVER,
    Change,
    ChangeKind,
    FloatArray,
    Segment,
    ServerShift,
    Timeline,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OnsetOptions:
    """Thresholds that decide what counts as a change, an onset and a risen server."""

    min_windows: int = 2
    """Shortest segment in windows."""

    penalty_factor: float = 3.0
    """PELT penalty in units of log(windows) times the summed noise variance."""

    min_distance: float = 0.05
    """Smallest total variation distance between two segments' server distributions that
    counts as a change of distribution (5 points of traffic moved)."""

    min_error_rise: float = 0.02
    """Smallest error-rate difference, as a fraction of requests, that counts as a change."""

    share_rise_points: float = 0.02
    """A server has risen when its share grows by at least this fraction of requests..."""

    share_rise_ratio: float = 1.25
    """... and to at least this many times its share before (the same ratio as HAProxy's
    lowest recommended ``hash-balance-factor``, 125, in HAProxy 2.6 configuration.txt)."""

    alpha: float = 0.001
    """Significance level of the chi-square tests that a change must also pass, so that
    a handful of requests cannot make a change."""

    min_window_fraction: float = 0.1
    """Windows with fewer requests than this fraction of the median window are left out
    of detection (the partial first and last windows, gaps)."""


@dataclass(frozen=True)
class OnsetResult:
    """Segments of the timeline and the changes between them."""

    segments: tuple[Segment, ...]
    changes: tuple[Change, ...]
    baseline: int
    """Index of the segment used as normal: the one with the lowest error rate, ties
    broken by the lowest skew."""


def detect_changes(timeline: Timeline, options: OnsetOptions | None = None) -> OnsetResult:
    """Split the timeline into segments and classify the change between each pair."""
    options = options or OnsetOptions()
    if len(timeline) == 0:
        return OnsetResult(segments=(), changes=(), baseline=0)

    usable = _detection_windows(timeline, options)
    bounds = _segment_bounds(timeline, usable, options)
    bounds = _merge_small_changes(timeline, bounds, options)
    segments = tuple(_segment(timeline, first, last) for first, last in bounds)

    baseline = min(range(len(segments)), key=lambda i: (segments[i].error_rate, segments[i].skew))
    changes = _classify(timeline, bounds, segments, baseline, options)
    return OnsetResult(segments=segments, changes=changes, baseline=baseline)


def _detection_windows(timeline: Timeline, options: OnsetOptions) -> np.ndarray:
    requests = timeline.requests
    busy = requests[requests > 0]
    if busy.size == 0:
        return np.zeros(0, dtype=np.int64)
    floor = options.min_window_fraction * float(np.median(busy))
    return np.flatnonzero((requests > 0) & (requests >= floor))


def _segment_bounds(
    timeline: Timeline, usable: np.ndarray, options: OnsetOptions
) -> list[tuple[int, int]]:
    """Return (first, last) window indexes of each segment, covering every window."""
    count = len(timeline)
    # A short timeline (a few wide windows) cannot hold two segments of min_windows each
    # around every change: allow one-window segments there; the chi-square merge below
    # still joins those that do not differ.
    min_size = options.min_windows if usable.size >= 4 * options.min_windows else 1
    if usable.size < 2 * min_size:
        return [(0, count - 1)]

    signal = np.column_stack([timeline.server_shares[usable], timeline.error_rate[usable]])
    if min_size == 1:
        noise = _sampling_variance(signal, timeline.requests[usable])
    else:
        noise = _noise_variance(signal)
    penalty = options.penalty_factor * np.log(usable.size) * max(noise, 1e-6)
    algorithm = ruptures.Pelt(model="l2", min_size=min_size, jump=1)
    breaks = algorithm.fit(signal).predict(pen=penalty)
    logger.debug("PELT penalty %.4g over %d windows: breaks %s", penalty, usable.size, breaks)

    # ruptures returns the end index (exclusive) of each segment in the usable series; a
    # segment starts at the usable window after the previous break, so skipped windows join
    # the segment before them.
    starts = [0] + [int(usable[b]) for b in breaks[:-1]]
    ends = [s - 1 for s in starts[1:]] + [count - 1]
    return list(zip(starts, ends, strict=True))


def _noise_variance(signal: FloatArray) -> float:
    """Sum over columns of the noise variance, from the median absolute first difference
    (robust to the few large differences at change points)."""
    if signal.shape[0] < 3:
        return float(signal.var(axis=0).sum())
    differences = np.diff(signal, axis=0)
    mad = np.median(np.abs(differences - np.median(differences, axis=0)), axis=0)
    sigma = mad / (0.6745 * np.sqrt(2.0))
    return float((sigma**2).sum())


def _sampling_variance(signal: FloatArray, requests: np.ndarray) -> float:
    """Sum over columns of the binomial sampling variance p(1 - p)/n of a window's share,
    averaged over windows: the noise estimate for timelines too short for differences."""
    counts = np.maximum(requests.astype(np.float64), 1.0)[:, None]
    return float((signal * (1.0 - signal) / counts).mean(axis=0).sum())


def _merge_small_changes(
    timeline: Timeline, bounds: list[tuple[int, int]], options: OnsetOptions
) -> list[tuple[int, int]]:
    """Join neighbouring segments whose difference stays under every effect-size floor."""
    merged = list(bounds)
    changed = True
    while changed and len(merged) > 1:
        changed = False
        for i in range(len(merged) - 1):
            before = span_totals(timeline, *merged[i])
            after = span_totals(timeline, *merged[i + 1])
            if not _differs(before, after, options):
                merged[i] = (merged[i][0], merged[i + 1][1])
                del merged[i + 1]
                changed = True
                break
    return merged


@dataclass(frozen=True)
class SpanTotals:
    """Requests of a run of windows summed per server."""

    counts: FloatArray
    shares: FloatArray
    errors: int
    error_rate: float
    skew: float
    requests: int


def span_totals(timeline: Timeline, first: int, last: int) -> SpanTotals:
    """Sum windows ``first`` to ``last`` (inclusive)."""
    counts = timeline.server_counts[first : last + 1].sum(axis=0).astype(np.float64)
    requests = int(timeline.requests[first : last + 1].sum())
    errors = int(timeline.errors[first : last + 1].sum())
    total = counts.sum()
    shares = counts / total if total > 0 else counts
    real = _real_columns(timeline)
    real_counts = counts[real]
    skew = (
        float(real_counts.max() / real_counts.mean())
        if real_counts.size and real_counts.mean() > 0
        else 1.0
    )
    return SpanTotals(
        counts=counts,
        shares=shares,
        errors=errors,
        error_rate=errors / requests if requests else 0.0,
        skew=skew,
        requests=requests,
    )


def _real_columns(timeline: Timeline) -> np.ndarray:
    return np.array([not k.endswith("/" + NO_SERVER) for k in timeline.server_keys], dtype=bool)


def _distance(before: SpanTotals, after: SpanTotals) -> float:
    return float(0.5 * np.abs(after.shares - before.shares).sum())


def _differs(before: SpanTotals, after: SpanTotals, options: OnsetOptions) -> bool:
    """True when the server distribution or the error rate changed past its effect-size
    floor and the change is significant at ``options.alpha``."""
    moved = _distance(before, after) >= options.min_distance and (
        _homogeneity_p(before, after) < options.alpha
    )
    errors_moved = abs(after.error_rate - before.error_rate) >= options.min_error_rise and (
        _proportion_p(before, after) < options.alpha
    )
    return moved or errors_moved


def _homogeneity_p(before: SpanTotals, after: SpanTotals) -> float:
    """p-value of the chi-square test that both segments share one server distribution."""
    table = np.vstack([before.counts, after.counts])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or np.any(table.sum(axis=1) == 0):
        return 1.0
    return float(scipy.stats.chi2_contingency(table, correction=False).pvalue)


def _proportion_p(before: SpanTotals, after: SpanTotals) -> float:
    """p-value of the chi-square test that both segments share one error rate."""
    errors = np.array([before.errors, after.errors], dtype=np.float64)
    requests = np.array([before.requests, after.requests], dtype=np.float64)
    table = np.vstack([errors, requests - errors])
    if np.any(requests == 0) or np.any(table.sum(axis=1) == 0):
        return 1.0
    return float(scipy.stats.chi2_contingency(table, correction=False).pvalue)


def _risen_mask(segment: SpanTotals, baseline: SpanTotals, options: OnsetOptions) -> np.ndarray:
    """Servers whose share is above the baseline's by both rise floors."""
    return (segment.shares - baseline.shares >= options.share_rise_points) & (
        segment.shares >= options.share_rise_ratio * baseline.shares
    )


def _elevated(segment: SpanTotals, baseline: SpanTotals, options: OnsetOptions) -> bool:
    """True when traffic concentrated on some servers or errors rose, against the
    baseline: at least ``min_distance`` of traffic moved and some server's share rose past
    both rise floors, or the error rate rose by ``min_error_rise``."""
    concentrated = bool(np.any(_risen_mask(segment, baseline, options)))
    return (
        concentrated and _distance(baseline, segment) >= options.min_distance
    ) or segment.error_rate - baseline.error_rate >= options.min_error_rise


def _rose(before: SpanTotals, after: SpanTotals, options: OnsetOptions) -> bool:
    """True when the error rate rose by ``min_error_rise``, or traffic concentrated: at
    least ``min_distance`` moved, some server's share rose past both rise floors and the
    skew grew."""
    errors_up = after.error_rate - before.error_rate >= options.min_error_rise
    concentrated = (
        bool(np.any(_risen_mask(after, before, options)))
        and after.skew > before.skew
        and _distance(before, after) >= options.min_distance
    )
    return errors_up or concentrated


def _recovered(
    segment: SpanTotals, baseline: SpanTotals, culprits: np.ndarray, options: OnsetOptions
) -> bool:
    """True when the error rate is back near the baseline and none of the servers that
    rose at the onset is still above its baseline share."""
    still_risen = bool(np.any(_risen_mask(segment, baseline, options) & culprits))
    return segment.error_rate - baseline.error_rate < options.min_error_rise and not still_risen


def _segment(timeline: Timeline, first: int, last: int) -> Segment:
    totals = span_totals(timeline, first, last)
    # Requests the load balancer answered itself reached no server: not a busy server.
    order = [
        i
        for i in np.argsort(-totals.shares, kind="stable")
        if not timeline.server_keys[i].endswith("/" + NO_SERVER)
    ][:3]
    p90 = timeline.total_p90[first : last + 1]
    weights = timeline.requests[first : last + 1]
    valid = ~np.isnan(p90) & (weights > 0)
    return Segment(
        first=first,
        last=last,
        start=timeline.starts[first],
        end=timeline.starts[last] + timeline.width,
        requests=totals.requests,
        error_rate=totals.error_rate,
        skew=totals.skew,
        # Request-weighted mean of the windows' p90: an estimate, not the segment's p90.
        p90_ms=float(np.average(p90[valid], weights=weights[valid])) if valid.any() else None,
        top_servers=tuple(
            (timeline.server_keys[i], float(totals.shares[i]))
            for i in order
            if totals.shares[i] > 0
        ),
    )


def _classify(
    timeline: Timeline,
    bounds: list[tuple[int, int]],
    segments: tuple[Segment, ...],
    baseline: int,
    options: OnsetOptions,
) -> tuple[Change, ...]:
    base = span_totals(timeline, *bounds[baseline])
    # The onset is the first rise past the floors into a segment elevated against the
    # baseline, even when the first segment already holds the start of the incident (a
    # window that straddles the bad change). A recovery needs an onset before it and
    # metrics that did not get worse.
    incident = False
    culprits = np.zeros(len(timeline.server_keys), dtype=bool)
    changes: list[Change] = []
    for i in range(1, len(bounds)):
        before = span_totals(timeline, *bounds[i - 1])
        after = span_totals(timeline, *bounds[i])
        rose = _rose(before, after, options)
        if not incident and rose and _elevated(after, base, options):
            kind = ChangeKind.ONSET
            incident = True
            culprits = _risen_mask(after, base, options)
        elif incident and not rose and _recovered(after, base, culprits, options):
            kind = ChangeKind.RECOVERY
            incident = False
        else:
            kind = ChangeKind.CHANGE

        risen, fallen = _shifts(
            timeline,
            bounds_before=bounds[i - 1],
            bounds_after=bounds[i],
            before=before,
            after=after,
            options=options,
        )
        changes.append(
            Change(
                kind=kind,
                window=bounds[i][0],
                at=timeline.starts[bounds[i][0]],
                skew_before=before.skew,
                skew_after=after.skew,
                error_rate_before=before.error_rate,
                error_rate_after=after.error_rate,
                p90_before=segments[i - 1].p90_ms,
                p90_after=segments[i].p90_ms,
                risen=risen,
                fallen=fallen,
                magnitude=_distance(before, after),
            )
        )
    return tuple(changes)


def _shifts(
    timeline: Timeline,
    *,
    bounds_before: tuple[int, int],
    bounds_after: tuple[int, int],
    before: SpanTotals,
    after: SpanTotals,
    options: OnsetOptions,
) -> tuple[tuple[ServerShift, ...], tuple[ServerShift, ...]]:
    """Return the servers whose share rose and fell past the floors, largest change first."""
    errors_before = _error_rates(timeline, *bounds_before)
    errors_after = _error_rates(timeline, *bounds_after)
    risen: list[ServerShift] = []
    fallen: list[ServerShift] = []
    for i, key in enumerate(timeline.server_keys):
        if key.endswith("/" + NO_SERVER):
            continue
        shift = ServerShift(
            key=key,
            share_before=float(before.shares[i]),
            share_after=float(after.shares[i]),
            error_rate_before=float(errors_before[i]),
            error_rate_after=float(errors_after[i]),
        )
        difference = shift.share_after - shift.share_before
        if (
            difference >= options.share_rise_points
            and shift.share_after >= options.share_rise_ratio * shift.share_before
        ):
            risen.append(shift)
        elif (
            -difference >= options.share_rise_points
            and shift.share_before >= options.share_rise_ratio * shift.share_after
        ):
            fallen.append(shift)

    risen.sort(key=lambda s: s.share_before - s.share_after)
    fallen.sort(key=lambda s: s.share_after - s.share_before)
    return tuple(risen), tuple(fallen)


def _error_rates(timeline: Timeline, first: int, last: int) -> FloatArray:
    counts = timeline.server_counts[first : last + 1].sum(axis=0)
    errors = timeline.server_errors[first : last + 1].sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rates = errors / counts
    return np.where(counts > 0, rates, 0.0)
