"""Shadow -> canary -> live and rollback, on the planted-truth candidates."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from amc_learning.intelligence.calibration import calibrate, fit_calibration
from amc_learning.intelligence.rollout import RolloutPolicy, Version, decide
from amc_learning.intelligence.stats import sharpe_gain_test
from amc_learning.schemas.params import FALLBACK_PARAMS, AdaptiveParams
from amc_learning.simulator.research import ExperimentConfig, simulate_candidates

POLICY = RolloutPolicy()


def params(**changes) -> AdaptiveParams:
    return AdaptiveParams.model_validate({**FALLBACK_PARAMS.model_dump(), **changes})


#: catalyst and volume momentum carry the planted alpha; technical loses money
GOOD = params(
    scoring_weights={"volume_momentum": 0.3, "squeeze": 0.15, "catalyst": 0.45, "options": 0.05,
                     "technical": 0.0, "sentiment": 0.05},
    discovery_threshold=0.66,
)
#: a calibration bug: every confidence maps to 0.9, so it buys whatever discovery passes,
#: and discovery now favours the component that loses money
HARMFUL = params(
    scoring_weights={"volume_momentum": 0.0, "squeeze": 0.0, "catalyst": 0.0, "options": 0.2,
                     "technical": 0.6, "sentiment": 0.2},
    discovery_threshold=0.6,
    calibration=[{"raw": 0.0, "calibrated": 0.9}, {"raw": 1.0, "calibrated": 0.9}],
)


@pytest.fixture(scope="module")
def world() -> pl.DataFrame:
    return simulate_candidates(ExperimentConfig(seed=0, sessions=200))


def sessions(frame: pl.DataFrame) -> list[date]:
    return frame["session"].unique().sort().to_list()


def walk(frame, versions, until, fallback=None):
    """Run `decide` once per session from the first version's start until `until`
    sessions have passed, applying each action; return (actions with their session)."""
    days = sessions(frame)
    start = days.index(max(v.mode_since for v in versions))
    history = []
    for i in range(start + 1, min(start + until, len(days))):
        known = frame.filter(pl.col("session") <= days[max(i - 7, 0)])
        for action in decide(versions, known, fallback or params(), POLICY):
            history.append((i - start, action))
            versions = [
                Version(v.version, action.to_mode, v.params, v.parent, v.evidence_from, days[i])
                if v.version == action.version else v
                for v in versions
            ]
            if action.to_mode == "live":
                versions = [
                    Version(v.version, "superseded", v.params, v.parent, v.evidence_from,
                            days[i]) if v.mode == "live" and v.version != action.version else v
                    for v in versions
                ]
    return history, versions


def test_a_planted_harmful_version_is_caught_in_shadow_and_never_goes_live(world):
    day = sessions(world)[30]
    shadow = Version(2, "shadow", HARMFUL, None, day, day)
    history, final = walk(world, [shadow], until=120)
    modes = [a.to_mode for _, a in history]
    assert modes == ["rejected"], history
    after, action = history[0]
    assert action.evidence["why"] in ("worse", "unlikely to be better")
    assert action.evidence["sharpe_gain"] < 0
    assert after <= POLICY.max_sessions  # caught while still in shadow
    assert all(v.mode != "live" for v in final)


def test_a_better_version_goes_shadow_canary_live_and_noise_does_not(world):
    day = sessions(world)[30]
    history, _ = walk(world, [Version(2, "shadow", GOOD, None, day, day)], until=120)
    assert [a.to_mode for _, a in history] == ["canary", "live"], history
    (to_canary, canary), (to_live, _) = history
    assert to_live - to_canary >= POLICY.canary_sessions
    assert canary.evidence["p_not_better"] <= canary.evidence["needed"]
    assert canary.evidence["sharpe_gain"] > 0
    # the same candidate in a world without alpha: nothing to promote
    noise = simulate_candidates(ExperimentConfig(seed=0, sessions=200, noise_only=True))
    history, _ = walk(noise, [Version(2, "shadow", GOOD, None, day, day)], until=120)
    assert "live" not in [a.to_mode for _, a in history]


def test_the_paired_test_sees_a_real_gain_and_not_a_coin_flip():
    rng = np.random.default_rng(1)
    base = rng.normal(0.001, 0.01, 300)
    gain, p, read = sharpe_gain_test(base + rng.normal(0.004, 0.005, 300), base, block=7)
    assert gain > 0 and p < 0.01 and read == 43  # sessions 0, 7, .., 294
    _, p_same, _ = sharpe_gain_test(base + rng.normal(0.0, 0.005, 300), base, block=7)
    assert 0.05 < p_same < 0.95


def overlapping(rng: np.random.Generator, n: int, h: int = 7) -> np.ndarray:
    """`h`-session returns sampled every session: sums of h daily draws, overlapping."""
    daily = np.cumsum(np.r_[0.0, rng.standard_normal(n + h - 1)])
    return daily[h:] - daily[:-h]


@pytest.mark.parametrize("sessions", [20, 80])
def test_on_overlapping_returns_the_test_says_better_or_worse_as_often_as_it_should(
        sessions):
    """Two rules that earn the same, on 7-session returns read daily (a common part
    and a part of each): P(not better) is near uniform, so "better at 0.025" and "worse
    at 0.05" come as rarely as stated (the bootstrap it replaces said so 20 % and 24 %
    of the time at 20 sessions)."""
    rng = np.random.default_rng(7)
    ps = []
    for _ in range(2000):
        common = 3 * overlapping(rng, sessions)
        ps.append(sharpe_gain_test(common + overlapping(rng, sessions),
                                   common + overlapping(rng, sessions), 7)[1])
    ps = np.array(ps)
    assert 0.01 < np.mean(ps <= 0.025) < 0.045
    assert 0.03 < np.mean(ps >= 0.95) < 0.075


def test_a_live_version_whose_returns_turn_bad_is_rolled_back_to_its_parent():
    flip = 150
    frame = simulate_candidates(ExperimentConfig(seed=0, sessions=260, flip_session=flip))
    days = sessions(frame)
    parent = Version(1, "superseded", params(), None, days[0], days[0])
    live = Version(2, "live", GOOD, 1, days[60], days[100])
    history, _ = walk(frame, [parent, live], until=140)
    assert [a.to_mode for _, a in history] == ["rolled_back"], history
    after, action = history[0]
    assert action.restore == 1
    detected = days.index(date.fromisoformat(action.evidence["alarm_session"]))
    assert flip <= detected <= flip + 20, (flip, detected)  # bounded delay, no false alarm
    assert 100 + after <= detected + 7 + 1  # acted on once the outcomes were complete


def test_a_fitted_map_travels_as_the_contracts_knots_and_means_the_same():
    rng = np.random.default_rng(3)
    raw = rng.uniform(0, 1, 3000)
    fitted = fit_calibration(raw, (rng.uniform(0, 1, 3000) < 0.2 + 0.5 * raw).astype(float))
    published = params(calibration=[k.model_dump() for k in fitted.as_knots()])
    grid = np.linspace(0, 1, 101)
    assert np.allclose(calibrate(published.calibration, grid), fitted.apply(grid), atol=1e-6)
    assert np.array_equal(calibrate([], grid), grid)  # no map yet: the raw confidence
    with pytest.raises(ValueError, match="monotone"):
        params(calibration=[{"raw": 0.2, "calibrated": 0.5}, {"raw": 0.5, "calibrated": 0.3}])


def test_an_undecided_shadow_gives_way_to_a_fit_on_twice_its_history(world):
    """One version is judged at a time; a shadow the judge has not decided on is replaced
    once the history has doubled since its fit, by a fit that changes something — never
    before, never by the same params; a canary likewise, once it has been one for
    `futile_after` sessions without passing again."""
    from amc_learning.intelligence.cycle import plan

    days = sessions(world)
    # a judge that never decides: no promotion, rejection or futility
    patient = RolloutPolicy(min_sessions=20, futile_after=60, max_sessions=300,
                            promote_at=1.0, reject_at=0.0, futile_at=0.0)
    old, new = params(discovery_threshold=0.62), params(discovery_threshold=0.7)
    calls: list[int] = []

    def fit(frame, incumbent, regime, guardrails, returned=new):
        calls.append(frame["session"].n_unique())
        return returned, {}

    def cycle(known_sessions, mode="shadow", fitted=fit):
        shadow = Version(1, mode, old, None, days[60], days[60])
        known = world.filter(pl.col("session") < days[known_sessions])
        return plan([shadow], known, "daily", patient, fit=fitted, fallback=params())

    entries, actions, _ = cycle(110)  # 110 sessions known: less than twice its 60
    assert (entries, actions, calls) == ([], [], [])
    entries, _, fitted = cycle(125)  # 125 >= 2 x 60: a fit, and it replaces the shadow
    assert calls == [125] and [(e["version"], e["mode"]) for e in entries] == [
        (1, "rejected"), (2, "shadow")]
    assert entries[0]["evidence"] == {"why": "superseded by a fit on more history",
                                      "fitted_sessions": 60, "sessions": 125, "by": 2}
    assert entries[1]["params"] == new and fitted["candidate"] == 2
    same = cycle(125, fitted=lambda f, i, r, g: (old, {}))  # the shadow's own params again
    assert same[0] == [] and same[2]["candidate"] is None
    calls.clear()
    early = RolloutPolicy(min_sessions=20, futile_after=70, max_sessions=300,
                          promote_at=1.0, reject_at=0.0, futile_at=0.0)  # judged on 65
    shadow = Version(1, "shadow", old, None, days[60], days[60])
    assert plan([shadow], world.filter(pl.col("session") < days[125]), "daily", early,
                fit=fit, fallback=params())[0] == [] and calls == []
    calls.clear()
    young = Version(1, "canary", old, None, days[60], days[100])  # a canary 25 sessions
    assert plan([young], world.filter(pl.col("session") < days[125]), "daily", patient,
                fit=fit, fallback=params())[0] == [] and calls == []  # it is judged out
    # a canary for 65 sessions that has not passed again: its arm ends, the fallback is
    # live again (version 2), and the new fit is a shadow over it
    entries, _, fitted = cycle(125, mode="canary")
    assert calls == [125] and [(e["version"], e["mode"], e["parent"]) for e in entries] == [
        (1, "rejected", None), (2, "live", None), (3, "shadow", 2)]
    assert entries[0]["evidence"]["by"] == 3 and entries[1]["params"] == params()
    assert fitted["candidate"] == 3
