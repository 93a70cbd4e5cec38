"""Which intervention for whom: a depth-2 assignment rule learned from doubly robust scores,
with its value (the share in a job within the horizon if citizens were assigned by it) and an
honest, cross-fitted interval beside current practice, treating nobody and the best single
programme.

Method (Athey & Wager 2021, "Policy learning with observational data"; the DR-learner of
Kennedy 2023 for the per-citizen effects):
1. Decision points: occasions where the person is in no programme started earlier, so any kind
   could start now. Arms: none, or one kind starting within the evaluation's window.
2. Cross-fitted by person: a multinomial propensity (boosted trees averaged with a logistic
   regression, as for the effects) and one outcome model per arm. The doubly robust score of
   arm a is Gamma_a = mu_a(x) + 1[A = a] (Y - mu_a(x)) / e_a(x); its mean over any rule's arms
   estimates that rule's value (the value itself is reported with the self-normalized form, see
   `assignment_value`).
3. The rule: an exhaustive search over depth-2 trees on readable indicators (caseworker ratings,
   age, readiness), each leaf the arm with the largest summed score (policytree's algorithm).
   With capacities, the places of an over-subscribed kind go to the citizens with the largest
   estimated effect of it (the DR-learner: Gamma_k - Gamma_none regressed on x); the others
   get no programme now.
4. The value of the learned rule: the rule is learned on half the persons and scored on the
   other half, both ways (cross-fitted policy evaluation), so the estimate is not flattered by
   the search; the interval is clustered by person.
The rule is a group-level finding for evaluators, never an instruction for one citizen.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bip.config import Settings
from evaluation.aipw import Z95, _apply, _cluster_se, _fit_arm, boosted, cluster_codes, fold_of
from evaluation.estimate import EvaluationInputError
from features.contract import ACTIVITY_KINDS

NONE = "none"
MAX_CUTS = 7          # split points per feature: the octiles of its values
CLIP = 0.05           # smallest propensity used in a score: a weight is at most 20 (0.01 let a few rows with
                      # weights up to 100 dominate; chosen on seeds 100 and 108, checked on fresh seeds)


@dataclass
class Rule:
    """A depth-2 (or shallower) assignment rule: `splits` describe the tree, `leaves` its arms."""
    feature: str | None          # root split (None: one arm for all)
    cut: float | None
    children: list               # [(feature, cut, [arm_low, arm_high]) or (None, None, [arm])] for x <= cut, x > cut

    def assign(self, frame: pd.DataFrame) -> np.ndarray:
        """The arm for every row of `frame` (before capacities)."""
        out = np.empty(len(frame), dtype=object)
        if self.feature is None:
            out[:] = self.children[0][2][0]
            return out
        low = frame[self.feature].to_numpy() <= self.cut
        for side, rows in ((0, low), (1, ~low)):
            feature, cut, arms = self.children[side]
            if feature is None:
                out[rows] = arms[0]
            else:
                below = frame[feature].to_numpy() <= cut
                out[rows & below] = arms[0]
                out[rows & ~below] = arms[1]
        return out

    def describe(self) -> list[dict]:
        """The leaves in words: the conditions and the arm."""
        if self.feature is None:
            return [{"conditions": [], "arm": self.children[0][2][0]}]
        leaves = []
        for side, op in ((0, "<="), (1, ">")):
            feature, cut, arms = self.children[side]
            root = f"{self.feature} {op} {self.cut:g}"
            if feature is None:
                leaves.append({"conditions": [root], "arm": arms[0]})
            else:
                leaves.append({"conditions": [root, f"{feature} <= {cut:g}"], "arm": arms[0]})
                leaves.append({"conditions": [root, f"{feature} > {cut:g}"], "arm": arms[1]})
        return leaves

    def to_dict(self) -> dict:
        return {"feature": self.feature, "cut": self.cut,
                "children": [{"feature": f, "cut": c, "arms": list(a)} for f, c, a in self.children],
                "leaves": self.describe()}


def rule_features(table: pd.DataFrame) -> list[str]:
    """Readable split candidates: the caseworker's latest rating of each indicator, age and the
    readiness (score or mean rating)."""
    names = [c for c in table.columns if c.endswith("__cw_level")]
    return names + [c for c in ("person__age", "readiness") if c in table.columns]


def _cuts(values: np.ndarray) -> np.ndarray:
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return np.zeros(0)
    cuts = np.unique(np.quantile(finite, np.arange(1, MAX_CUTS + 1) / (MAX_CUTS + 1), method="lower"))
    return cuts[cuts < finite.max()]


def _best_leaf(gamma_sum: np.ndarray) -> tuple[int, float]:
    a = int(np.argmax(gamma_sum))
    return a, float(gamma_sum[a])


def _best_stump(F: list[np.ndarray], cuts: list[np.ndarray], gamma: np.ndarray, rows: np.ndarray):
    """The best depth-1 subtree on `rows` (or no split): (value, feature index, cut, arms)."""
    total = gamma[rows].sum(axis=0)
    arm, best = _best_leaf(total)
    choice = (best, None, None, [arm])
    g = gamma[rows]
    for j, (values, c) in enumerate(zip(F, cuts)):
        if len(c) == 0:
            continue
        # bin b holds values in (c[b-1], c[b]]; NaN (a missing rating) goes above every cut
        bins = np.searchsorted(c, values[rows], side="left")
        sums = np.stack([np.bincount(bins, weights=g[:, a], minlength=len(c) + 1) for a in range(g.shape[1])], axis=1)
        below = np.cumsum(sums, axis=0)[:-1]               # x <= c[i]
        above = total - below
        value = below.max(axis=1) + above.max(axis=1)
        i = int(np.argmax(value))
        if value[i] > choice[0] + 1e-12:
            choice = (float(value[i]), j, float(c[i]), [int(np.argmax(below[i])), int(np.argmax(above[i]))])
    return choice


def learn_rule(frame: pd.DataFrame, gamma: np.ndarray, arms: list[str], features: list[str], depth: int = 2) -> Rule:
    """The depth-`depth` tree (1 or 2) maximising the summed scores `gamma` (rows x arms)."""
    F = [frame[f].to_numpy(dtype=float) for f in features]
    cuts = [_cuts(v) for v in F]
    everyone = np.ones(len(frame), dtype=bool)
    if depth == 1:
        value, j, cut, leaf = _best_stump(F, cuts, gamma, everyone)
        if j is None:
            return Rule(None, None, [(None, None, [arms[leaf[0]]])])
        return Rule(features[j], cut, [(None, None, [arms[leaf[0]]]), (None, None, [arms[leaf[1]]])])
    arm, best_value = _best_leaf(gamma.sum(axis=0))
    best = Rule(None, None, [(None, None, [arms[arm]])])
    for j, (values, c) in enumerate(zip(F, cuts)):
        for cut in c:
            low = values <= cut
            sides = []
            for rows in (low, ~low):
                v, k, kcut, leaf = _best_stump(F, cuts, gamma, rows)
                sides.append((v, None if k is None else features[k], kcut, [arms[a] for a in leaf]))
            value = sides[0][0] + sides[1][0]
            if value > best_value + 1e-12:
                best_value = value
                best = Rule(features[j], float(cut), [(s[1], s[2], s[3]) for s in sides])
    return best


def apply_capacity(assigned: np.ndarray, priority: dict[str, np.ndarray], capacity: dict[str, float]) -> np.ndarray:
    """At most capacity[kind] rows get each kind (a share of the rows when below 1, else a
    count); an over-subscribed kind goes to the rows with the largest `priority[kind]` (the
    estimated effect), the rest get no programme now."""
    out = assigned.copy()
    for kind, limit in capacity.items():
        places = int(np.floor(limit * len(out))) if limit < 1 else int(limit)
        rows = np.flatnonzero(out == kind)
        if len(rows) > places:
            order = rows[np.argsort(-priority[kind][rows], kind="stable")]
            out[order[places:]] = NONE
    return out


def _multinomial_propensity(X_train, a_train, X_test, n_arms: int, seed: int) -> np.ndarray:
    """P(arm | x): boosted trees averaged with a multinomial logistic regression, like the
    binary propensity of the effects; arms absent from the training rows get a tiny share."""
    present = np.unique(a_train)
    trees = boosted(True, seed)   # XGBoost switches to multi:softprob itself for more than two classes
    remap = {a: i for i, a in enumerate(present)}
    local = np.vectorize(remap.get)(a_train)
    p = np.full((len(X_test), n_arms), 1e-6)
    if len(present) == 1:
        p[:, present[0]] = 1.0
        return p
    tree_p = trees.fit(X_train, local).predict_proba(X_test)
    logistic = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)).fit(X_train, local)
    p[:, present] = 0.5 * (tree_p + logistic.predict_proba(X_test))
    return p / p.sum(axis=1, keepdims=True)


def doubly_robust_scores(X: np.ndarray, arm: np.ndarray, y: np.ndarray, clusters: np.ndarray, n_arms: int,
                         seed: int, folds: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cross-fitted (by person) doubly robust scores, propensities and outcome predictions
    (each rows x arms)."""
    fold = fold_of(clusters, folds, seed)
    gamma = np.zeros((len(y), n_arms))
    propensity = np.zeros((len(y), n_arms))
    outcome = np.zeros((len(y), n_arms))
    for k in range(folds):
        train, test = fold != k, fold == k
        e = _multinomial_propensity(X[train], arm[train], X[test], n_arms, seed + k)
        propensity[test] = e
        for a in range(n_arms):
            mu = _apply(_fit_arm(X, y, train & (arm == a), True, seed + k), X[test], True)
            took = arm[test] == a
            outcome[test, a] = mu
            gamma[test, a] = mu + took * (y[test] - mu) / np.maximum(e[:, a], CLIP)
    return gamma, propensity, outcome


def individual_effects(X: np.ndarray, gamma: np.ndarray, clusters: np.ndarray, seed: int, folds: int) -> np.ndarray:
    """The DR-learner: per citizen and kind, the cross-fitted regression of Gamma_kind -
    Gamma_none on the covariates (rows x kinds)."""
    fold = fold_of(clusters, folds, seed + 1)
    tau = np.zeros((len(X), gamma.shape[1] - 1))
    for k in range(folds):
        train, test = fold != k, fold == k
        for j in range(tau.shape[1]):
            target = gamma[train, j + 1] - gamma[train, 0]
            tau[test, j] = boosted(False, seed + k).fit(X[train], target).predict(X[test])
    return tau


def _interval(value: float, influence: np.ndarray, clusters: np.ndarray) -> dict:
    se = _cluster_se(influence, clusters)
    return {"value": float(value), "ci_low": value - Z95 * se, "ci_high": value + Z95 * se, "se": se}


def assignment_value(index: np.ndarray, outcome: np.ndarray, propensity: np.ndarray, arm: np.ndarray,
                     y: np.ndarray) -> tuple[float, np.ndarray]:
    """The value of assigning row i to arm index[i], and its influence values: the self-normalized
    doubly robust estimator (the outcome model's mean plus the clipped-weight mean of the residuals
    of the rows whose arm matches, normalized by those weights). The normalization keeps the
    correction at its scale when clipping shrinks the weights (their mean is 0.5-0.65 here, not 1)."""
    rows = np.arange(len(y))
    mu = outcome[rows, index]
    weight = (arm == index) / np.maximum(propensity[rows, index], CLIP)
    correction = float((weight * (y - mu)).sum() / max(weight.sum(), 1e-12))
    value = float(mu.mean()) + correction
    influence = (mu - mu.mean()) + weight * (y - mu - correction) / max(weight.mean(), 1e-12)
    return value, influence


def check_policy_parameters(kinds: list[str], capacity: dict[str, float] | None, depth: int, n_rows: int | None = None):
    """Clear errors for an unknown kind, a capacity that is negative or above the cohort, a depth
    other than 1 or 2."""
    if depth not in (1, 2):
        raise EvaluationInputError("depth", depth, "1 or 2 (a rule a policy reader can follow)")
    for kind, limit in (capacity or {}).items():
        if kind not in ACTIVITY_KINDS:
            raise EvaluationInputError("capacity", kind, f"a kind among {list(ACTIVITY_KINDS)}")
        if not isinstance(limit, (int, float)) or not np.isfinite(limit) or limit < 0 or (limit >= 1 and limit % 1):
            raise EvaluationInputError(f"capacity.{kind}", limit, "a share in [0, 1) or a whole number of places >= 1")
        if n_rows is not None and limit >= 1 and limit > n_rows:
            raise EvaluationInputError(f"capacity.{kind}", limit,
                                       f"at most the {n_rows} decision points of this cohort (or a share below 1)")
    unknown = [k for k in kinds if k not in ACTIVITY_KINDS]
    if unknown:
        raise EvaluationInputError("kind", unknown[0], f"one of {list(ACTIVITY_KINDS)}")


def parse_capacity(text: str | None) -> dict[str, float] | None:
    """'mentor=300,loentilskud=0.05' -> {'mentor': 300.0, 'loentilskud': 0.05}; clear errors."""
    if not text:
        return None
    places = {}
    for part in text.split(","):
        kind, sep, value = part.partition("=")
        try:
            places[kind.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise EvaluationInputError("capacity", part, "kind=places, e.g. mentor=300 or mentor=0.05, comma-separated")
    return places


def _decision_mask(table: pd.DataFrame, kinds: list[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """The decision points' mask in `table`, which kind started at each occasion (occasions x
    kinds) and how many eligible occasions were left out for two starts."""
    eligible = np.logical_and.reduce([table[f"eligible__{k}"].to_numpy() for k in kinds])
    treated = np.stack([table[f"treated__{k}"].to_numpy() == 1 for k in kinds], axis=1)
    several = treated.sum(axis=1) > 1
    return eligible & ~several, treated, int((eligible & several).sum())


def decision_point_count(table: pd.DataFrame, kinds: list[str]) -> int:
    """How many decision points decision_points() would give, without copying their rows."""
    return int(_decision_mask(table, kinds)[0].sum())


def decision_points(table: pd.DataFrame, kinds: list[str]) -> tuple[pd.DataFrame, np.ndarray, int]:
    """Occasions where no programme started earlier is running (every kind eligible), with
    `arm` = the kind started within the window or 'none'; occasions where two kinds started
    are left out. Returns the rows, their mask in `table` and how many were left out."""
    rows, treated, several = _decision_mask(table, kinds)
    frame = table[rows].reset_index(drop=True)
    t = treated[rows]
    frame["arm"] = np.where(t.any(axis=1), np.array(kinds, dtype=object)[t.argmax(axis=1)], NONE)
    return frame, rows, several


def learn_policy(table: pd.DataFrame, X: np.ndarray, outcome: str, kinds: list[str] | None = None,
                 capacity: dict[str, float] | None = None, depth: int = 2, seed: int = 0,
                 settings: Settings | None = None, progress=None, horizon: int = 12) -> dict:
    """The targeting rule and its value from an occasion table (evaluation.bip_mode's) and its
    encoded covariates `X` (same rows). Returns the rule, its leaves in words, the value of the
    cross-fitted rule with its interval beside current practice, treating nobody and the best
    single programme, the estimated gain over current practice, and working arrays ("_" keys)
    for the truth check."""
    settings = settings or Settings()
    progress = progress or (lambda fraction, message: None)
    kinds = list(kinds or ACTIVITY_KINDS)
    check_policy_parameters(kinds, capacity, depth)
    start = time.perf_counter()
    frame, keep, several = decision_points(table, kinds)
    X = X[keep]
    check_policy_parameters(kinds, capacity, depth, len(frame))
    arms = [NONE, *kinds]
    arm = frame["arm"].map({a: i for i, a in enumerate(arms)}).to_numpy()
    counts = np.bincount(arm, minlength=len(arms))
    thin = [arms[a] for a in range(1, len(arms)) if counts[a] < settings.min_arm]
    if thin:
        raise EvaluationInputError("kinds", thin, f"kinds started at >= {settings.min_arm} decision points "
                                   f"(counts: {dict(zip(arms, counts.tolist()))})")
    y = frame[outcome].to_numpy(dtype=float)
    clusters = cluster_codes(frame["person_id"].astype(str).to_numpy())
    progress(0.05, "policy: propensity and outcome models per arm")
    gamma, propensity, outcome_model = doubly_robust_scores(X, arm, y, clusters, len(arms), seed,
                                                            settings.evaluation_folds)
    progress(0.5, "policy: effects per citizen (DR-learner)")
    tau = individual_effects(X, gamma, clusters, seed, settings.evaluation_folds)
    priority = {k: tau[:, j] for j, k in enumerate(kinds)}
    features = rule_features(frame)

    def assign(rule: Rule, rows: np.ndarray) -> np.ndarray:
        out = rule.assign(frame[rows])
        if capacity:
            out = apply_capacity(out, {k: v[rows] for k, v in priority.items()}, capacity)
        return out

    # cross-fitted policy evaluation: learned on one half of the persons, scored on the other
    progress(0.8, "policy: learning the rule (cross-fitted)")
    halves = fold_of(clusters, 2, seed + 2)
    assigned = np.empty(len(frame), dtype=object)
    for h in (0, 1):
        learn, score = halves != h, halves == h
        rule_h = learn_rule(frame[learn].reset_index(drop=True), gamma[learn], arms, features, depth)
        assigned[score] = assign(rule_h, score)
    index = np.array([arms.index(a) for a in assigned])
    rule = learn_rule(frame, gamma, arms, features, depth)
    final = assign(rule, np.ones(len(frame), dtype=bool))

    def value_of(assignment: np.ndarray) -> tuple[float, np.ndarray]:
        return assignment_value(assignment, outcome_model, propensity, arm, y)
    learned_v, learned_if = value_of(index)
    learned = _interval(learned_v, learned_if, clusters)
    current = _interval(float(y.mean()), y - y.mean(), clusters)
    gain = _interval(learned_v - float(y.mean()), learned_if - (y - y.mean()), clusters)
    nobody = _interval(*value_of(np.zeros(len(frame), dtype=int)), clusters)
    singles = {}
    for j, k in enumerate(kinds):
        everyone = np.full(len(frame), k, dtype=object)
        if capacity and k in capacity:
            everyone = apply_capacity(everyone, priority, {k: capacity[k]})
        singles[k] = _interval(*value_of(np.array([arms.index(a) for a in everyone])), clusters)
    best_single = max(singles, key=lambda k: singles[k]["value"])
    shares = {a: float(np.mean(final == a)) for a in arms}
    return {
        "kinds": kinds, "arms": arms, "depth": depth, "capacity": capacity or {}, "outcome": outcome,
        "horizon_months": horizon,
        "decision_points": int(len(frame)), "persons": int(pd.unique(clusters).size),
        "left_out_several_starts": several, "arm_counts": dict(zip(arms, counts.tolist())),
        "rule": rule.to_dict(), "assigned_shares": shares,
        "value": {"learned_rule": learned, "current_practice": current, "treat_nobody": nobody,
                  "best_single_programme": {"kind": best_single, **singles[best_single]},
                  "single_programmes": singles},
        "gain_over_current_practice": gain,
        "method": "doubly robust scores from cross-fitted (by person) multinomial propensity and per-arm "
                  "outcome models; exhaustive depth-2 tree (policytree's algorithm); value of the rule learned "
                  "on one half of the persons and scored on the other, both ways; 95% intervals clustered by person",
        "propensity_min": float(propensity[np.arange(len(frame)), arm].min()),
        "seconds": time.perf_counter() - start,
        # working arrays for the truth check (dropped from JSON)
        "_frame": frame[["person_id", "as_of", "arm", *features]], "_assigned_crossfit": assigned,
        "_assigned_final": final, "_gamma": gamma, "_rule": rule, "_features": features,
    }


def true_values(policy: dict, truth: pd.DataFrame, depth: int | None = None) -> dict:
    """Against a simulator's truth_policy.parquet: the true value of the cross-fitted and of the
    final rule's assignments, of current practice and of the best rule of the same depth (learned
    on the true probabilities themselves), and the regret."""
    frame = policy["_frame"]
    arms = policy["arms"]
    joined = frame[["person_id", "as_of"]].merge(
        truth.assign(as_of=pd.to_datetime(truth["as_of"]).astype(frame["as_of"].dtype)),
        on=["person_id", "as_of"], how="left", validate="one_to_one")
    columns = [f"p_12m_{a}" for a in arms]
    if joined[columns].isna().any().any():
        missing = int(joined[columns[0]].isna().sum())
        raise ValueError(f"{missing} decision points have no row in truth_policy.parquet")
    p = joined[columns].to_numpy()
    rows = np.arange(len(frame))

    def value(assigned):
        return float(p[rows, [arms.index(a) for a in assigned]].mean())
    best = learn_rule(frame.reset_index(drop=True), p, arms, policy["_features"], depth or policy["depth"])
    best_assigned = best.assign(frame)
    if policy["capacity"]:   # the places go to those who truly gain most
        true_gain = {k: p[:, arms.index(k)] - p[:, 0] for k in policy["kinds"]}
        best_assigned = apply_capacity(best_assigned, true_gain, policy["capacity"])
    observed = frame["arm"].to_numpy()
    out = {"crossfit_rule": value(policy["_assigned_crossfit"]), "final_rule": value(policy["_assigned_final"]),
           "current_practice": value(observed), "treat_nobody": float(p[:, 0].mean()),
           "best_same_depth_rule": value(best_assigned), "best_rule": best.to_dict()}
    out["gain_over_current_practice"] = out["crossfit_rule"] - out["current_practice"]
    out["regret"] = out["best_same_depth_rule"] - out["final_rule"]
    v = policy["value"]["learned_rule"]
    out["covered"] = bool(v["ci_low"] <= out["crossfit_rule"] <= v["ci_high"])
    out["final_covered"] = bool(v["ci_low"] <= out["final_rule"] <= v["ci_high"])
    return out
