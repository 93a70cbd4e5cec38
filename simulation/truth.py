"""Ground truth: the true outcome probability for every measurement occasion, and true effects.

The probability for (person, as_of) integrates over the future given what was observed by as_of
and the true parameters: each occasion's state is copied `paths` times and run forward through the
same engine as the cohort. The job hazard of each month is integrated exactly (survival is
multiplied in, not sampled), so Monte Carlo error comes only from future ratings, activities and
caseworker changes; its standard error is reported in truth.json.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulation.cohort import CohortRun, _dates
from simulation.engine import NEVER, Engine, State
from simulation.params import TrueParameters
from simulation.posterior import draw as draw_trait

HORIZONS = (3, 6, 12, 24)
_BATCH_UNITS = 400_000


def _concat_states(states: list[State]) -> State:
    fields = State.__dataclass_fields__
    return State(**{name: None if getattr(states[0], name) is None
                    else np.concatenate([getattr(s, name) for s in states]) for name in fields})


def occasion_states(run: CohortRun) -> tuple[np.ndarray, np.ndarray, np.ndarray, State]:
    """Person index, month, day and state right after each measurement, in run order."""
    person = np.concatenate([s[0] for s in run.snapshots])
    month = np.concatenate([np.full(len(s[0]), s[1]) for s in run.snapshots])
    state = _concat_states([s[2] for s in run.snapshots])
    parts = run.log["measurements"]
    # snapshots and measurement log entries are appended in the same order, one per call
    day = np.concatenate([p[1] for p in parts if len(p[0])])
    return person, month, day, state


def survival(params: TrueParameters, run: CohortRun, state: State, month: np.ndarray, seed: int,
             horizons=HORIZONS) -> np.ndarray:
    """(units, len(horizons)) probability of no job by each horizon, one path per unit."""
    state = state.copy()
    state.activity_start = None
    engine = Engine(params, run.world, np.random.default_rng(seed))
    n = state.caseworker_rating.shape[0]
    live = np.ones(n, dtype=bool)
    log_surv = np.zeros(n)
    out = np.empty((n, len(horizons)))
    month = month.copy()
    for step in range(1, max(horizons) + 1):
        month += 1
        engine.month_boundary(state, month, live, None)
        log_surv -= np.exp(engine.log_hazard(state, month))
        due, draws = engine.scheduled_measurements(state, month, live)
        engine.measure(state, due, state.next_due[due].copy(), False, draws)
        if step in horizons:
            out[:, horizons.index(step)] = np.exp(log_surv)
    return out


def occasion_trait_weights(run: CohortRun, before_assignment: bool = False) -> np.ndarray | None:
    """Realistic regime: the hidden trait's posterior on its grid at each occasion (rows as
    occasion_states), given everything observed by then (`before_assignment`: but that
    occasion's programme starts); None in the default regime."""
    if run.posterior is None:
        return None
    return run.posterior.weights(np.concatenate([s[4 if before_assignment else 3] for s in run.snapshots]))


def probabilities(params: TrueParameters, run: CohortRun, state: State, month: np.ndarray,
                  paths: int, seed: int, progress=None, trait_weights: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Mean job probability by each horizon and its Monte Carlo standard error, per occasion;
    `progress(fraction)` before every batch. With `trait_weights` (realistic regime) each path
    draws the hidden trait from the occasion's posterior, so the probability is the one given the
    observed history; without, the states' own trait is kept (the probability given it)."""
    n = len(month)
    per_batch = max(1, _BATCH_UNITS // paths)
    mean = np.empty((n, len(HORIZONS)))
    se = np.empty((n, len(HORIZONS)))
    for b, lo in enumerate(range(0, n, per_batch)):
        if progress:
            progress(lo / n)
        rows = np.arange(lo, min(n, lo + per_batch))
        copies = np.repeat(rows, paths)
        units = state.take(copies)
        if trait_weights is not None:
            units.trait = draw_trait(trait_weights[rows], paths, run.posterior.grid,
                                     np.random.default_rng([seed, b, 31]))
        surv = survival(params, run, units, month[copies], seed + b)
        surv = surv.reshape(len(rows), paths, len(HORIZONS))
        mean[rows] = 1.0 - surv.mean(axis=1)
        se[rows] = surv.std(axis=1, ddof=1) / np.sqrt(paths)
    return mean, se


def truth_table(params: TrueParameters, run: CohortRun, paths: int, seed: int, progress=None):
    """The true probability at each horizon for every occasion, given its observed history."""
    person, month, day, state = occasion_states(run)
    p, se = probabilities(params, run, state, month, paths, seed, progress, occasion_trait_weights(run))
    table = pd.DataFrame({"person_id": run.people.person_id[person], "as_of": _dates(day)})
    for h, horizon in enumerate(HORIZONS):
        table[f"p_{horizon}m"] = p[:, h]
    order = np.lexsort((day, run.people.person_id[person]))
    return table.iloc[order].reset_index(drop=True), se, (person, month, day, state)


def _paired_p12(params, run, treated: State, control: State, month, paths, seed) -> np.ndarray:
    """12-month job probability under two states with common random numbers."""
    h12 = HORIZONS.index(12)
    with_it = probabilities(params, run, treated, month, paths, seed)[0][:, h12]
    without = probabilities(params, run, control, month, paths, seed)[0][:, h12]
    return with_it, without


def intervention_effects(params: TrueParameters, run: CohortRun, occasions, paths: int, seed: int,
                         progress=None, per_occasion: list | None = None) -> dict:
    """True average effect on the treated of starting each kind at a measurement, on 12-month
    job chances, against not starting it then (later starts stay possible: the as-of-start
    estimand an evaluator can target). `progress(fraction, kind)` as each kind starts.
    `per_occasion`, a list: each kind's paired differences are appended to it as a frame
    (see `treated_effects_frame`), so effects within any group of occasions can be computed."""
    person, month, day, state = occasions
    effects = {}
    for a, kind in enumerate(params.kinds):
        if progress:
            progress(a / len(params.kinds), kind)
        started = np.nonzero(state.active[:, a] & (state.activity_age[:, a] == 0)
                             & (state.activity_start[:, a] == day))[0]
        if len(started) == 0:
            effects[kind] = {"att_12m": None, "n_treated_occasions": 0}
            continue
        treated = state.take(started)
        control = treated.copy()
        control.active[:, a] = False
        control.exposed[:, a] = False
        with_it, without = _paired_p12(params, run, treated, control, month[started], paths, seed + 7919 * (a + 1))
        diff = with_it - without
        if per_occasion is not None:
            per_occasion.append(pd.DataFrame({
                "person_id": run.people.person_id[person[started]], "as_of": _dates(day[started]), "kind": kind,
                "effect_12m": diff, "p_12m_with": with_it, "p_12m_without": without}))
        effects[kind] = {
            "att_12m": float(diff.mean()),
            "mc_se": float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else None,
            "risk_ratio": float(with_it.mean() / without.mean()),
            "n_treated_occasions": int(len(started)),
        }
    return effects


def treated_effects_frame(per_occasion: list) -> pd.DataFrame:
    """truth_effects.parquet: one row per treated occasion and kind (person_id, as_of, kind,
    effect_12m = the paired 12-month difference with and without the start, p_12m_with,
    p_12m_without). Its mean per kind is truth.json's att_12m; its mean within the evaluation's
    readiness bands or jobcentres is the true effect there."""
    columns = ["person_id", "as_of", "kind", "effect_12m", "p_12m_with", "p_12m_without"]
    if not per_occasion:
        return pd.DataFrame(columns=columns)
    return pd.concat(per_occasion, ignore_index=True)[columns].sort_values(["kind", "person_id", "as_of"],
                                                                          ignore_index=True)


def policy_counterfactuals(params: TrueParameters, run: CohortRun, occasions, paths: int, seed: int,
                           progress=None) -> pd.DataFrame:
    """truth_policy.parquet: for every occasion where the person is in no programme that started
    before it (a decision point: any kind could start now), the true 12-month job probability if
    nothing starts now (`p_12m_none`) and if each kind starts now (`p_12m_<kind>`), with common
    random numbers across the arms, and the arm that was taken (`arm`: 'none' or the kind
    started that day). The true value of any assignment rule is the mean of its arms' columns."""
    person, month, day, state = occasions
    started_now = state.active & (state.activity_age == 0) & (state.activity_start == day[:, None])
    decision = np.nonzero(~(state.active & ~started_now).any(axis=1))[0]
    base = state.take(decision)
    now = started_now[decision]
    base.active &= ~now
    base.exposed &= ~now
    arm = np.where(now.any(axis=1), np.array(params.kinds, dtype=object)[now.argmax(axis=1)], "none")
    arm[now.sum(axis=1) > 1] = "several"
    frame = pd.DataFrame({"person_id": run.people.person_id[person[decision]], "as_of": _dates(day[decision]),
                          "arm": arm})
    h12 = HORIZONS.index(12)
    for a, name in enumerate(["none", *params.kinds]):
        if progress:
            progress(a / (len(params.kinds) + 1), name)
        units = base.copy()
        if a > 0:
            units.active[:, a - 1] = True
            units.activity_age[:, a - 1] = 0
        # the same seed for every arm: common random numbers, so differences are paired
        frame[f"p_12m_{name}"] = probabilities(params, run, units, month[decision], paths, seed)[0][:, h12]
    return frame.sort_values(["person_id", "as_of"], ignore_index=True)


def caseworker_change_effect(params: TrueParameters, run: CohortRun, occasions, paths: int, seed: int) -> dict:
    """Ratio of 12-month job chances right after a caseworker change, against the same occasions
    with the change's disruption removed (the new caseworker kept)."""
    person, month, day, state = occasions
    changed = np.nonzero(state.months_since_change == 0)[0]
    treated = state.take(changed)
    control = treated.copy()
    control.months_since_change[:] = NEVER
    with_it, without = _paired_p12(params, run, treated, control, month[changed], paths, seed)
    return {"risk_ratio_12m": float(with_it.mean() / without.mean()), "n_occasions": int(len(changed))}


def trait_confounding(params: TrueParameters, run: CohortRun, occasions, oracle_p12: np.ndarray, paths: int,
                      seed: int) -> dict:
    """Realistic regime: how strongly the hidden trait confounds each kind, in the terms of
    omitted-variable-bias sensitivity analysis (Chernozhukov, Cinelli, Newey, Sharma and
    Syrgkanis 2022, as in DoubleML), on the kind's eligible occasions (not running it before):

    - cf_y: the share of the outcome's residual variation that the trait explains,
      E[(g - g_s)^2] / E[(Y - g_s)^2], with g_s the 12-month probability given the observed
      history (the oracle) and g the same given the trait too; E[(Y - g_s)^2] = E[g_s (1 - g_s)];
    - cf_d: the relative gain in the Riesz representer's second moment from the trait,
      1 - E[a_s^2] / E[a^2], for the ATT (a^2 ~ e / (1 - e)) and the ATE (a^2 ~ 1 / (e (1 - e))),
      with e = P(start | history, trait) exact and e_s its mean over the trait's posterior
      before the start; E[a^2] is taken over that posterior too (exact; a sample of true traits
      gives the same in expectation, with noise that can turn a small cf_d negative);
    - r2_d: the trait's partial R^2 with the start, E[(e - e_s)^2] / E[e_s (1 - e_s)].
    """
    person, month, day, state = occasions
    h12 = HORIZONS.index(12)
    long = probabilities(params, run, state, month, paths, seed)[0][:, h12]   # the states keep the true trait
    before = occasion_trait_weights(run, before_assignment=True)
    grid, r = run.posterior.grid, params.realism
    engine = Engine(params, run.world, np.random.default_rng(0))
    readiness = engine.assignment_readiness(state)
    out = {}
    for a, kind in enumerate(params.kinds):
        started = state.active[:, a] & (state.activity_age[:, a] == 0) & (state.activity_start[:, a] == day)
        eligible = started | ~state.active[:, a]
        base = params.assign_intercept[a] + params.assign_readiness[a] * (readiness[eligible] - 3.0)
        # e at every grid value; moments of e are taken over the trait's posterior before the
        # start (exact, and never below the short ones), not over one draw of the true trait
        w = before[eligible]
        e_grid = 1.0 / (1.0 + np.exp(-(base[:, None] + r.take_up[a] * grid[None, :])))
        e_s = (w * e_grid).sum(axis=1)
        e = 1.0 / (1.0 + np.exp(-(base + r.take_up[a] * state.trait[eligible])))
        g, g_s = long[eligible], oracle_p12[eligible]
        att_long = (w * e_grid / (1 - e_grid)).sum(axis=1)
        ate_long = (w / (e_grid * (1 - e_grid))).sum(axis=1)
        out[kind] = {
            "cf_y": float(np.mean((g - g_s) ** 2) / np.mean(g_s * (1 - g_s))),
            "cf_d_att": float(1.0 - np.mean(e_s / (1 - e_s)) / np.mean(att_long)),
            "cf_d_ate": float(1.0 - np.mean(1 / (e_s * (1 - e_s))) / np.mean(ate_long)),
            "r2_d": float(np.mean((w * (e_grid - e_s[:, None]) ** 2).sum(axis=1)) / np.mean(e_s * (1 - e_s))),
            "corr_outcome_start": float(np.corrcoef(g - g_s, e - e_s)[0, 1]),  # sign of the bias
            "eligible_occasions": int(eligible.sum()),
            "starts": int(started.sum()),
        }
    return out
