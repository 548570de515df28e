"""What an undeclared component model must be, read from the candidates it scored.

A producer that sends contract-v2 candidates with a raw score and named components, but
never registered a declaration, still says what its model is in every candidate: the
score it computed, the components it computed it from, and whether the candidate passed.
A component model's score is a weighted sum of its components (`schemas.models.
ComponentModel`), so

* **the weights** are the non-negative least-squares fit of the raw score on the
  components' values (no intercept). Their sum `s` is the scale of the weighted sum: the
  declaration's weights are the fit's over `s` (summing to 1), and its scale and
  threshold are the producer's over `s`, so its rule passes the same candidates. The fit
  must explain the score (R² at least `MIN_R2`), or the score is not a weighted sum of
  what the candidates carry and nothing is inferred;
* **the threshold** is the score at which "score ≥ threshold" agrees best with what the
  producer marked passed (all of it, for a producer whose bar is its only rule; a
  producer that also caps how many pass agrees less, and the agreement says by how much).

It is an inference, and says so: the backtest names it, and `models infer` prints it as
a declaration to check and register, never registered by itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from amc_learning.schemas.models import Component, ComponentModel, Scale

#: the share of the raw score's variance the components must explain
MIN_R2 = 0.98
#: candidates with a score and every component, fewest to infer from
MIN_ROWS = 50


class NotInferable(ValueError):
    """The candidates do not say what the model is: the message says why."""


@dataclass(frozen=True)
class Inferred:
    model: ComponentModel
    r2: float
    #: share of candidates whose "passed" the inferred threshold reproduces
    agreement: float
    rows: int

    def note(self) -> str:
        return (f"{self.model.name} {self.model.version} is not declared: its weights and "
                f"threshold are inferred from {self.rows:,} of its candidates (the score is "
                f"their weighted sum to R² {self.r2:.4f}; the threshold reproduces "
                f"{self.agreement:.1%} of their passes)")


def infer_component_model(name: str, version: str, raw: np.ndarray,
                          scale: tuple[float, float], components: dict[str, np.ndarray],
                          passed: np.ndarray) -> Inferred:
    """The declaration `raw` (each candidate's score on `scale`), `components` (each
    component's value per candidate, NaN where missing) and `passed` imply (the module's
    doc); NotInferable when they do not imply one."""
    if not components:
        raise NotInferable(f"{name} {version}: its candidates carry no components")
    names = sorted(components)
    x = np.column_stack([np.asarray(components[c], dtype=float) for c in names])
    y = np.asarray(raw, dtype=float)
    ok = np.isfinite(y) & np.isfinite(x).all(axis=1)
    if ok.sum() < MIN_ROWS:
        raise NotInferable(f"{name} {version}: {int(ok.sum())} candidates carry a score and "
                           f"every component; at least {MIN_ROWS} are needed to infer it")
    x, y, passed = x[ok], y[ok], np.asarray(passed, dtype=bool)[ok]
    if passed.all() or not passed.any():
        raise NotInferable(f"{name} {version}: {'every' if passed.all() else 'no'} candidate "
                           "passed, so its candidates do not show where its bar is")
    b, _ = nnls(x, y)
    total = float(b.sum())
    spread = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(((y - x @ b) ** 2).sum()) / spread if spread > 0 else 0.0
    if total <= 0 or r2 < MIN_R2:
        raise NotInferable(f"{name} {version}: its score is not a weighted sum of its "
                           f"components (R² {r2:.3f} at best, {MIN_R2} needed): register a "
                           "declaration (`amc-learning models register`)")
    weights = _simplex(b / total)
    threshold, agreement = _bar(y, passed)
    low, high = (min(scale[0], float(y.min())) / total, max(scale[1], float(y.max())) / total)
    model = ComponentModel(
        kind="component", name=name, version=version, scale=Scale(low=low, high=high),
        threshold=min(max(threshold / total, low), high),
        description="inferred from its candidates, not declared",
        components=[Component(name=c, weight=w) for c, w in zip(names, weights, strict=True)])
    return Inferred(model, round(r2, 6), round(agreement, 6), len(y))


def _simplex(weights: np.ndarray) -> list[float]:
    """`weights` (summing to 1) rounded to 6 places, still summing to 1."""
    rounded = np.round(weights, 6)
    rounded[int(np.argmax(rounded))] += 1.0 - float(rounded.sum())
    return [float(w) for w in np.round(rounded, 9)]


def _bar(score: np.ndarray, passed: np.ndarray) -> tuple[float, float]:
    """(the threshold whose "score ≥ it" agrees best with `passed`, the share agreeing)."""
    order = np.argsort(score, kind="stable")
    s, p = score[order], passed[order]
    # cutting before position k: rows below fail, rows from k pass
    fails_below = np.concatenate([[0], np.cumsum(~p)])
    passes_from = np.concatenate([np.cumsum(p[::-1])[::-1], [0]])
    agree = fails_below + passes_from
    cuts = np.flatnonzero(np.r_[True, s[1:] > s[:-1]])  # only between distinct scores
    best = int(cuts[np.argmax(agree[cuts])])
    return float(s[best]), float(agree[best]) / len(s)
