"""The learner scored against planted ground truth and real history (figures printed: -s)."""

from __future__ import annotations

import itertools
from datetime import date

import numpy as np
import polars as pl
import pytest

from amc_learning.intelligence.analysis import AnalysisConfig, analyze, known_by
from amc_learning.intelligence.attribution import (
    daily_ic,
    detect_regime_shifts,
    ic_summary,
    walk_forward_importance,
)
from amc_learning.intelligence.calibration import expected_calibration_error, fit_calibration
from amc_learning.intelligence.patterns import (
    analyze_discovery_patterns,
    analyze_thesis_accuracy,
    identify_failure_modes,
    learn_bins,
    pattern_performance,
)
from amc_learning.intelligence.regimes import RegimeConfig, calibrate_cusum, label_regimes
from amc_learning.simulator.market import load_history
from amc_learning.simulator.research import PlantedTruth, ResearchConfig, simulate_research

SIGNATURE = ["crowding", "noise_1"]


@pytest.fixture(scope="module")
def world():
    return simulate_research(ResearchConfig(seed=0))  # 2 years x 200 symbols


@pytest.fixture(scope="module")
def nasdaq():
    h = load_history()
    return pl.DataFrame({"session": h.sessions, "close": h.close, "vix": h.vix}).with_columns(
        pl.col("vix").fill_nan(None)
    )


def between(frame, start, end):
    return frame.filter(
        pl.col("session").is_between(date.fromisoformat(start), date.fromisoformat(end))
    )


# -- regimes --------------------------------------------------------------------------------


def test_regimes_on_real_nasdaq_history_find_the_bear_markets(nasdaq):
    labels = label_regimes(nasdaq)
    share = {
        span: (between(labels, *span)["trend"] == "bear").mean()
        for span in [
            ("2000-04-01", "2002-10-09"),
            ("2007-11-01", "2009-03-09"),
            ("2003-01-01", "2006-12-31"),
            ("2013-01-01", "2017-12-31"),
        ]
    }
    print(
        "\nshare of sessions labelled bear:",
        {f"{a}..{b}": round(v, 3) for (a, b), v in share.items()},
    )
    assert share[("2000-04-01", "2002-10-09")] > 0.5
    assert share[("2007-11-01", "2009-03-09")] > 0.5
    assert share[("2003-01-01", "2006-12-31")] < 0.5
    assert share[("2013-01-01", "2017-12-31")] < 0.5


def test_regime_labels_are_causal_and_do_not_flicker(nasdaq):
    full = label_regimes(nasdaq)
    for t in (300, 1500, 2500, 4000):
        early = label_regimes(nasdaq.head(t))
        later = label_regimes(nasdaq.head(t + 100)).head(t)
        assert early.equals(later), f"labels up to session {t} changed when later data arrived"
    trend = full["trend"].drop_nulls().to_list()
    runs = [len(list(group)) for _, group in itertools.groupby(trend)]
    assert min(runs[1:]) >= RegimeConfig().min_dwell  # the first run may start mid-way


def test_cusum_false_alarm_rate_on_stable_streams_is_at_most_the_configured_rate():
    rate = 0.05
    detector = calibrate_cusum(500, rate, seed=1)
    rng = np.random.default_rng(99)
    alarms = 0
    for _ in range(200):
        mean, sd = rng.normal(0, 0.01), rng.uniform(0.005, 0.03)
        alarms += detector.first_alarm(rng.normal(mean, sd, 500)) is not None
    observed = alarms / 200
    # binomial sd of the observed rate at 5 % over 200 streams: 1.5 points
    print(
        f"\nCUSUM h={detector.threshold:.2f}: false alarms on 200 stable streams: {observed:.3f} "
        f"(configured {rate})"
    )
    assert observed <= rate


def test_the_planted_regime_switch_is_detected_within_10_sessions():
    detector = calibrate_cusum(
        500,
        0.05,
        direction=1,
        drift=1.0,
        null=lambda rng, shape: np.abs(rng.standard_normal(shape)),
    )
    delays = []
    for seed in range(5):
        w = simulate_research(ResearchConfig(seed=seed))
        returns = np.diff(np.log(w.index["close"].to_numpy()))  # r[i]: session i -> i + 1
        alarm = detector.first_alarm(np.abs(returns))
        delays.append(None if alarm is None else alarm + 1 - w.truth.switch_session)
    print(f"\nregime switch detection delay (sessions) over 5 seeds: {delays}")
    assert delays[0] is not None and 0 <= delays[0] <= 10
    assert sum(d is not None and 0 <= d <= 10 for d in delays) >= 4


# -- attribution ----------------------------------------------------------------------------


def test_planted_features_rank_above_every_noise_feature_in_their_regime(world):
    truth, frame = world.truth, world.decisions
    ic = daily_ic(frame, list(truth.features), "return_7d")
    summary = ic_summary(ic, horizon=7, by=["regime"])
    for regime, planted in (("bull", truth.bull_features), ("bear", truth.bear_features)):
        rows = summary.filter(pl.col("regime") == regime)
        t = dict(zip(rows["feature"], rows["t_nw"], strict=True))
        importance = walk_forward_importance(
            frame.filter(pl.col("regime") == regime), list(truth.features), "return_7d", horizon=7
        )
        imp = dict(zip(importance["feature"], importance["importance"], strict=True))
        print(f"\n{regime}: IC t (Newey-West) { ({k: round(v, 1) for k, v in t.items()}) }")
        print(f"{regime}: permutation importance { ({k: round(v, 4) for k, v in imp.items()}) }")
        noise_t = max(abs(t[n]) for n in truth.noise_features)
        noise_imp = max(imp[n] for n in truth.noise_features)
        for feature in planted:
            assert t[feature] > noise_t and imp[feature] > noise_imp


def test_regime_shifts_are_found_for_the_planted_features_only(world):
    truth = world.truth
    ic = daily_ic(world.decisions, list(truth.features), "return_7d")
    shifts = detect_regime_shifts(ic, horizon=7)
    flagged = set(shifts.filter(pl.col("shifted"))["feature"])
    print(f"\nfeatures whose IC shifted between regimes: {sorted(flagged)}")
    assert set(truth.bull_features) | set(truth.bear_features) <= flagged
    assert not flagged & set(truth.noise_features)


# -- calibration ----------------------------------------------------------------------------


def test_calibration_on_a_later_held_out_period_halves_the_ece():
    w = simulate_research(ResearchConfig(seed=5, truth=PlantedTruth(switch_session=None)))
    data = w.decisions.drop_nulls("side_return_7d")
    train = data.filter(pl.col("session_index") < 250)
    test = data.filter(pl.col("session_index") >= 257)  # a purge gap of the 7-day horizon
    fitted = fit_calibration(train["confidence"].to_numpy(), train["win"].to_numpy())
    c, won = test["confidence"].to_numpy(), test["win"].to_numpy()
    raw, calibrated = (
        expected_calibration_error(c, won),
        expected_calibration_error(fitted.apply(c), won),
    )
    print(
        f"\nheld-out ECE: raw {raw:.4f}, calibrated ({fitted.method}, {len(fitted.knots_x)} knots) "
        f"{calibrated:.4f}"
    )
    assert calibrated <= raw / 2
    assert np.all(np.diff(fitted.knots_y) >= 0)


def test_few_samples_fall_back_to_platt_scaling():
    rng = np.random.default_rng(3)
    c = rng.uniform(0.3, 0.9, 80)
    won = rng.random(80) < c - 0.1
    fitted = fit_calibration(c, won)
    assert fitted.method == "platt" and np.all(np.diff(fitted.knots_y) >= 0)


# -- patterns and failure modes -------------------------------------------------------------


def _failures(w):
    frame = w.decisions
    bins = learn_bins(frame.filter(pl.col("session_index") < 150), SIGNATURE)
    patterns = pattern_performance(frame, bins)
    truth = bins.label(frame).group_by("signature").agg(pl.col("expected_return_7d").mean())
    return patterns.join(truth, on="signature"), identify_failure_modes(patterns, frame)


def test_the_planted_losing_pattern_is_flagged_and_few_flags_are_noise():
    flagged = noise = 0
    for seed in (0, 1, 2):
        patterns, failures = _failures(simulate_research(ResearchConfig(seed=seed)))
        losers = failures.filter(pl.col("kind") == "systematic_loser")
        planted = patterns.filter(
            pl.col("signature").str.starts_with("crowding=q3")
            & pl.col("signature").str.ends_with("|bull|BUY")
        )
        assert (planted["q_value"] < 0.1).all(), f"seed {seed}: planted loser not flagged"
        assert set(planted["signature"]) <= set(losers["signature"])
        truly = dict(zip(patterns["signature"], patterns["expected_return_7d"], strict=True))
        flagged += len(losers)
        noise += sum(truly[s] >= 0 for s in losers["signature"])
    print(f"\nsystematic losers flagged over 3 seeds: {flagged}, of which noise: {noise}")
    assert noise / flagged < 0.10


def test_overconfidence_is_found_above_the_planted_threshold(world):
    _, failures = _failures(world)
    over = failures.filter(pl.col("kind") == "overconfidence")["signature"].to_list()
    print(f"\noverconfident bins: {over}")
    assert over and all(float(s.split(">=")[1]) >= 0.7 for s in over)


def test_pure_noise_flags_almost_nothing():
    flags = tests = 0
    for seed in (10, 11, 12):
        w = simulate_research(ResearchConfig(seed=seed, pure_noise=True))
        patterns, failures = _failures(w)
        ic = daily_ic(w.decisions, list(w.truth.features), "return_7d")
        shifts = detect_regime_shifts(ic, horizon=7)
        flags += len(failures) + int(shifts["shifted"].sum())
        tests += len(patterns) + len(shifts) + 20  # + the confidence bins tested
    print(f"\npure noise: {flags} flags out of {tests} hypotheses")
    assert flags / tests < 0.05


# -- the whole pass -------------------------------------------------------------------------


def test_results_as_of_t_do_not_change_when_later_data_arrive(world):
    cfg = AnalysisConfig(features=world.truth.features, signature_features=tuple(SIGNATURE))
    sessions = world.decisions["session"].unique().sort()
    for i in (200, 350):
        t, later = sessions[i], sessions[i + 100]
        now = analyze(
            world.decisions.filter(pl.col("session") <= t),
            world.index.filter(pl.col("session") <= t),
            t,
            cfg,
        )
        after = analyze(
            world.decisions.filter(pl.col("session") <= later),
            world.index.filter(pl.col("session") <= later),
            t,
            cfg,
        )
        for name in (
            "patterns",
            "failure_modes",
            "calibration",
            "feature_ic",
            "importance",
            "regime_shifts",
            "regimes",
        ):
            assert getattr(now, name).equals(getattr(after, name)), f"{name} as of {t} changed"
        assert now.window[1] < t and now.definitions == after.definitions


def test_decisions_whose_tracking_stopped_are_left_out_not_fatal(world):
    """An old decision with no horizon return (its tracking stopped) has no outcome to learn
    from: the pass leaves it out instead of failing on a missing label."""
    cfg = AnalysisConfig(features=world.truth.features, signature_features=tuple(SIGNATURE))
    t = world.decisions["session"].unique().sort()[300]
    stalled = world.decisions.with_columns(
        *[pl.when(pl.int_range(pl.len()) % 10 == 0).then(None).otherwise(pl.col(c)).alias(c)
          for c in world.decisions.columns if c.endswith("return_7d") or c == "win"])
    kept = known_by(stalled, t, cfg.horizon)
    assert len(kept) and kept["return_7d"].null_count() == 0 and kept["win"].null_count() == 0
    assert len(kept) < len(known_by(world.decisions, t, cfg.horizon))
    result = analyze(stalled, world.index, t, cfg)
    assert result.calibration["n"].sum() == len(kept) * len(cfg.calibration_groups)


def test_the_strategy_change_detector_alarms_after_the_switch_not_before(world):
    cfg = AnalysisConfig(features=world.truth.features, signature_features=tuple(SIGNATURE))
    result = analyze(world.decisions, world.index, world.decisions["session"].max(), cfg)
    switch = world.decisions.filter(pl.col("session_index") == world.truth.switch_session)
    alarm = result.change_points.filter(pl.col("stream") == "mean_return")["alarm_session"][0]
    sessions = world.decisions["session"].unique().sort().to_list()
    delay = sessions.index(alarm) - world.truth.switch_session
    print(f"\nstrategy mean-return CUSUM alarm {delay} sessions after the planted switch")
    assert alarm >= switch["session"][0] and delay <= 40


def test_thesis_accuracy_and_discovery_patterns_in_the_seeds_terms(world):
    accuracy = analyze_thesis_accuracy(world.decisions)
    assert set(accuracy["decision_source"]) == {"thesis", "discovery"}
    assert (accuracy["win_rate_lower"] <= accuracy["win_rate"]).all()
    assert (accuracy["confidence_gap"] > 0).all()  # the planted overconfidence
    candidates = world.decisions.with_columns((pl.col("confidence") > 0.6).alias("passed"))
    bins = learn_bins(candidates.filter(pl.col("session_index") < 150), SIGNATURE)
    discovery = analyze_discovery_patterns(candidates, bins)
    kinds = {s.split("|")[-1] for s in discovery["signature"]}
    assert kinds == {"PASSED", "REJECTED"} and discovery["n"].sum() == len(
        candidates.drop_nulls("return_7d")
    )
