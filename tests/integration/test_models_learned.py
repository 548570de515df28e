"""Two scoring models learned side by side in one database: the engine's own contract
(six components) and AMC-Trader's scanner 3.3.1 (tiers worth points). The events go
through the persist consumer's write path into the real PostgreSQL, the cycles through
the real broker, and a real reader follows the params topic."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest

from amc_learning.adapters.scanner_weights import structure_differs
from amc_learning.entrypoints.bootstrap import bootstrap
from amc_learning.intelligence.rollout import RolloutPolicy
from amc_learning.intelligence.tracking import never_decided_id
from amc_learning.schemas.common import ScoringModel, Tier
from amc_learning.schemas.discovery import CandidateScored
from amc_learning.schemas.models import UNTIERED, TieredModel, shipped, tiers_of
from amc_learning.schemas.outcomes import OutcomeUpdated
from amc_learning.schemas.params import AdaptiveParams, TieredParams
from amc_learning.service.cycle import run_cycle
from amc_learning.simulator.research import ExperimentConfig, simulate_candidates
from amc_learning.simulator.tiered import TieredConfig, simulate_tiered
from amc_learning.store.migrations import migrate
from amc_learning.store.rows import plan_batch
from amc_learning.store.sink import BatchStore
from amc_learning.streams.params import ParamsReader
from tests import factories
from tests.integration.helpers import rows
from tests.integration.test_cli import CHROMIUM, cli, headless

pytestmark = pytest.mark.integration

SCANNER = next(m for m in shipped() if (m.name, m.version) == ("amc-scanner", "3.3.1"))
assert isinstance(SCANNER, TieredModel)
OLDER = SCANNER.model_copy(update={"version": "3.2.0"})
SESSIONS, SYMBOLS = 140, 60
VENDORED = (Path(__file__).resolve().parents[1] / "fixtures" / "amc_trader" / "data"
            / "scanner_weights.json")


@dataclass
class Rec:
    topic: str
    value: bytes
    key: bytes | None = None
    partition: int = 0
    offset: int = 0


def _at(session: object) -> datetime:
    return datetime.combine(session, time(14, 30), UTC)  # type: ignore[arg-type]


def _outcome(c: CandidateScored, ret: float | None) -> OutcomeUpdated:
    return OutcomeUpdated(
        event_id=uuid.uuid4(), occurred_at=c.occurred_at + timedelta(days=10),
        producer="outcome-tracker", decision_id=never_decided_id(c), symbol=c.symbol,
        decision_type="IGNORE", tracked_from="candidate", is_counterfactual=True,
        entry_price=c.price, revision=7, outcome_type="open", sessions_elapsed=7,
        return_7d=ret, return_pct=ret)


def events() -> list[Rec]:
    """Every candidate of both worlds, never decided on, with its 7-session outcome."""
    native = simulate_candidates(ExperimentConfig(seed=1, sessions=SESSIONS, symbols=SYMBOLS))
    # a truth planted ten times the experiment's: the test is about the wiring
    tiered = simulate_tiered(TieredConfig(seed=3, sessions=SESSIONS, symbols=SYMBOLS,
                                          return_per_point=0.0004))
    out: list[Rec] = []
    for r in native.iter_rows(named=True):
        c = factories.candidate(
            occurred_at=_at(r["session"]), run_id=f"native-{r['session']}", symbol=r["symbol"],
            passed=False, composite_score=r["confidence"],
            scores={k: r[k] for k in factories.SCORES}, producer="discovery-svc")
        out += [Rec("learning.discovery.v1", c.model_dump_json().encode()),
                Rec("learning.outcomes.v1", _outcome(c, r["return_7d"]).model_dump_json()
                    .encode())]
    for r in tiered.iter_rows(named=True):
        sent = {f.name: Tier(tier=r[f"tier:{f.name}"]) for f in SCANNER.factors
                if r[f"tier:{f.name}"] not in (None, UNTIERED)}
        c = CandidateScored(
            event_id=uuid.uuid4(), occurred_at=_at(r["session"]), producer="amc-trader",
            schema_version=2, run_id=f"scan-{r['session']}", symbol=r["symbol"], rank=1,
            composite_score=0.5, passed=False, price=10.0, tiers=sent,
            scoring_model=ScoringModel(name="amc-scanner", version="3.3.1"))
        out += [Rec("learning.discovery.v1", c.model_dump_json().encode()),
                Rec("learning.outcomes.v1", _outcome(c, r["return_7d"]).model_dump_json()
                    .encode())]
    return out


def test_each_model_learns_into_its_own_set_and_a_reader_gets_only_its_models(
        settings, tmp_path):
    keyed = factories.keyed(settings)
    deps = bootstrap(keyed)
    migrate(deps.db)
    plan = plan_batch(events(), consumer="persist", max_event_bytes=100_000)
    assert not plan.dead_letters, plan.dead_letters[:1]
    store = BatchStore(deps.db)
    store.write(plan)
    store.close()

    with deps.db.unit_of_work() as uow:
        stored = uow.frames.scored("amc-scanner", "3.3.1", keyed.horizons,
                                   factors=[f.name for f in SCANNER.factors])
    assert len(stored) == SESSIONS * SYMBOLS  # every candidate, once, with its outcome
    first = stored.sort("session", "symbol").row(0, named=True)
    sent = {f.name: first.get(f"sent:{f.name}") for f in SCANNER.factors
            if first.get(f"sent:{f.name}") is not None}
    assert sent and all(tiers_of(SCANNER, sent, {})[f] == t for f, t in sent.items())

    sessions = sorted({d for (d,) in rows(keyed.database_url, "SELECT DISTINCT"
                       " (decided_at AT TIME ZONE 'UTC')::date FROM learning_decisions")})
    # promotes whatever it judges, to a canary of every decision; a cycle 30 sessions
    # after the first judges a version on all of them (the judge reads the history)
    eager = RolloutPolicy(horizon=keyed.learning_horizon, min_sessions=3, canary_sessions=3,
                          promote_at=0.0, reject_at=-1.0, canary_pct=100.0)
    modes = []
    for as_of in (sessions[-30], sessions[-1]):
        summary = run_cycle(deps, "daily", as_of, eager, report=False)
        modes.append({s["name"]: [c["mode"] for c in s["changes"]] for s in summary["models"]})
    assert modes == [{"default": ["shadow"], "amc-scanner:3.3.1": ["shadow"]},
                     {"default": ["canary"], "amc-scanner:3.3.1": ["canary"]}], modes
    history = rows(keyed.database_url, "SELECT DISTINCT name, scoring_model, params->>'kind'"
                   " FROM params_history")
    assert set(history) == {("default", "native", None),
                            ("amc-scanner:3.3.1", "amc-scanner 3.3.1", "tiered")}

    reader = ParamsReader.from_settings(factories.reading(keyed), models=(SCANNER, OLDER))
    reader.start()
    try:
        assert reader.wait_for(lambda r: r.status()["held"] == {
            "default": {"shadow": 1, "canary": 1},
            "amc-scanner:3.3.1": {"shadow": 1, "canary": 1}}, timeout=60), reader.status()
        table = reader.table(SCANNER, decision_key="scan-1:GME")
        assert (table.source, table.mode) == ("published", "canary")
        assert isinstance(table.params, TieredParams) and table.params.model.version == "3.3.1"
        assert table.params != TieredParams.declared(SCANNER)  # a learned table
        older = reader.table(OLDER, decision_key="scan-1:GME")  # nothing learned for it
        assert older.source == "fallback" and older.params == TieredParams.declared(OLDER)
        own = reader.get(decision_key="scan-1:GME")
        assert own.mode == "canary" and isinstance(own.params, AdaptiveParams)
        mixed = reader.get("amc-scanner:3.3.1", decision_key="scan-1:GME")
        assert mixed.source == "fallback" and isinstance(mixed.params, AdaptiveParams)
        assert reader.status()["rejections"] == {}
    finally:
        reader.close()

    # the canary's table as the scanner's own file, beside the vendored one it replaces
    out = tmp_path / "scanner_weights.json"
    exported = cli(keyed, "params", "export", "--model", "amc-scanner 3.3.1", "--mode",
                   "proposed", "--base", str(VENDORED), "--out", str(out))
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert "4 of 18 tables are read by amc-scanner 3.3.1" in exported.stderr
    base, written = json.loads(VENDORED.read_text()), json.loads(out.read_text())
    assert structure_differs(base, written) is None
    assert written["version"] == "3.3.1+learned.1"
    entry = written["update_history"][-1]
    assert entry["changes"] and all(" \u2192 " in c for c in entry["changes"])
    assert any("(n " in c and " q " in c for c in entry["changes"])  # with its evidence
    live = cli(keyed, "params", "export", "--model", "amc-scanner 3.3.1", "--base",
               str(VENDORED))  # nothing is live yet: the file as it is
    assert live.returncode == 0 and json.loads(live.stdout) == base
    assert "nothing learned is live" in live.stderr
    unknown = cli(keyed, "params", "export", "--model", "amc-scanner 9.9")
    assert unknown.returncode == 2 and "no declaration of 'amc-scanner 9.9'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    # AlphaStack's own shape: its BASE_WEIGHTS by its keys (nothing learned for it here)
    alphastack = cli(keyed, "params", "export", "--model", "alphastack 4.1")
    assert alphastack.returncode == 0, alphastack.stderr[-2000:]
    weights = json.loads(alphastack.stdout)
    assert weights["BASE_WEIGHTS"]["S1"] == 0.3 and weights["TRADE_READY_SCORE"] == 75.0
    assert "reads no file of them yet" in alphastack.stderr
    wrong = cli(keyed, "params", "export", "--model", "alphastack 4.1", "--format",
                "amc-scanner-weights")
    assert wrong.returncode == 2 and "is a component model" in wrong.stderr
    deps.close()

    # the report: a section for the scanner, its tables side by side, a chart
    page = tmp_path / "report.html"
    assert cli(keyed, "report", "--out", str(page)).returncode == 0
    html = page.read_text()
    section = html[html.index('<section id="models">'):]
    section = section[:section.index("</section>")]
    assert "amc-scanner 3.3.1" in section and "proposed: version 1 (canary)" in section
    assert "4 of 18 tables are read by its code" in section and "<svg" in section
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed: `apt-get install chromium` to render the "
                    "report headless (its HTML was checked above)")
    dom = headless(tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    shown = dom.stdout[dom.stdout.index('<section id="models">'):]
    assert "changed tiers, declared vs learned" in shown and " learned</text>" in shown
    shot = tmp_path / "models.png"
    assert headless(tmp_path, f"--screenshot={shot}", f"{page.as_uri()}#models"
                    ).returncode == 0
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
