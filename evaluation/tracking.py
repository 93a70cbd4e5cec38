"""Every evaluation as an MLflow run in the experiment `Settings.evaluation_experiment`
(evaluation.json, report.html and, in BIP mode, band_effects.json as artifacts), and the one
evaluation an evaluator has marked "published" for the caseworker page.

Publishing sets the experiment tag `bip.published_run` to the run's id (one tag write: the last
publish wins, and readers never see a half-published state) and tags the run
`bip.published=true` for the MLflow UI.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import mlflow
from mlflow import MlflowClient

from bip.config import Settings, get_settings
from evaluation.estimate import EvaluationInputError, write_outputs
from models.store import configure_tracking, ensure_experiment

PUBLISHED_TAG = "bip.published_run"


def log_evaluation(result: dict, title: str | None = None, settings: Settings | None = None,
                   publish: bool = False) -> str:
    """Log one evaluation as an MLflow run: parameters, one metric set per kind, the artifacts.
    Returns the run id."""
    settings = settings or get_settings()
    configure_tracking()
    experiment_id = ensure_experiment(settings.evaluation_experiment)
    kinds = result["kinds"] if result.get("mode") == "bip" else {result.get("kind", "effect"): result}
    params = {"mode": result.get("mode", "generic"), "estimand": result.get("estimand"), "seed": result.get("seed"),
              "kinds": ",".join(kinds), "min_arm": settings.min_arm, "trim": settings.trim,
              "folds": settings.evaluation_folds, "repeats": settings.evaluation_repeats,
              "window_days": settings.treatment_window_days}
    if result.get("mode") == "bip":
        params.update({"horizon": result["horizon"], "persons": result["persons"], "occasions": result["occasions"],
                       "score_included": result["score_included"]})
    else:
        params.update({"design": result.get("design"), "treatment": result.get("treatment"),
                       "outcome": result.get("outcome")})
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"evaluation-{time.strftime('%Y%m%d-%H%M%S')}") as run:
        mlflow.log_params({k: str(v)[:250] for k, v in params.items()})
        for kind, r in kinds.items():
            if r.get("estimate") is None:
                continue
            prefix = "" if len(kinds) == 1 else f"{kind}_"
            mlflow.log_metrics({f"{prefix}estimate": r["estimate"], f"{prefix}ci_low": r["ci_low"],
                                f"{prefix}ci_high": r["ci_high"], f"{prefix}n_treated": r["n_treated"],
                                f"{prefix}naive": r["naive"]["estimate"]})
        if result.get("policy"):
            v = result["policy"]["value"]["learned_rule"]
            g = result["policy"]["gain_over_current_practice"]
            mlflow.log_metrics({"policy_value": v["value"], "policy_value_ci_low": v["ci_low"],
                                "policy_value_ci_high": v["ci_high"], "policy_gain": g["value"],
                                "policy_gain_ci_low": g["ci_low"], "policy_gain_ci_high": g["ci_high"]})
        with tempfile.TemporaryDirectory() as folder:
            write_outputs(result, folder, title)
            mlflow.log_artifacts(folder)
        run_id = run.info.run_id
    if publish:
        publish_evaluation(run_id, settings)
    return run_id


def publish_evaluation(run_id: str, settings: Settings | None = None) -> None:
    """Mark an all-kinds BIP evaluation as the published one (served to the caseworker page)."""
    settings = settings or get_settings()
    configure_tracking()
    client = MlflowClient()
    try:
        run = client.get_run(run_id)
    except Exception:   # noqa: BLE001  (mlflow raises its own exception types for unknown ids)
        raise EvaluationInputError("run_id", run_id, "the id of a logged evaluation run")
    experiment = client.get_experiment_by_name(settings.evaluation_experiment)
    if experiment is None or run.info.experiment_id != experiment.experiment_id:
        raise EvaluationInputError("run_id", run_id, f"a run of the experiment {settings.evaluation_experiment!r}")
    if "band_effects.json" not in {a.path for a in client.list_artifacts(run_id)}:
        raise EvaluationInputError("run_id", run_id, "a BIP-mode evaluation (one with band_effects.json)")
    client.set_tag(run_id, "bip.published", "true")
    client.set_experiment_tag(experiment.experiment_id, PUBLISHED_TAG, run_id)


def published_effects(settings: Settings | None = None) -> dict | None:
    """The published evaluation's effects by readiness band, or None when none is published.

    Shape (effects and interval bounds in percentage points on the chance of a job or education
    within `horizon_months`; the effect on those who started, against not starting then)::

        {"run_id": str, "published_at": ISO time of the run's end, "horizon_months": 12,
         "estimand": "ATT", "bands": {"by": "score" | "mean caseworker rating",
                                      "cuts": [0.03, 0.10], "labels": ["low", "middle", "high"]},
         "kinds": {kind: {"overall": {"effect_points", "ci_low_points", "ci_high_points", "n_treated"},
                          "by_band": {band: {...same four...}},
                          "by_jobcenter": {jobcenter: {...same four...}},
                          "band_intervals_checked": bool, "interval": str}}}

    With `bip evaluate --policy`, also "targeting": the learned rule's leaves (conditions and
    kind), its value, current practice's and the gain in percentage points with 95% intervals, and
    `checked` (the rule's intervals passed `bip evaluate-check --policy`): a group-level finding
    for planning, never an instruction for one citizen.

    A band or jobcentre with too few treated or comparison occasions is absent.
    `band_intervals_checked`: whether the band intervals passed the truth check
    (evaluation/known_limits.json; absent in evaluations published before it existed: treat as false). These are
    statements about similar citizens, never derived from a model's explanation.
    """
    settings = settings or get_settings()
    configure_tracking()
    client = MlflowClient()
    experiment = client.get_experiment_by_name(settings.evaluation_experiment)
    if experiment is None or PUBLISHED_TAG not in experiment.tags:
        return None
    run_id = experiment.tags[PUBLISHED_TAG]
    run = client.get_run(run_id)
    with tempfile.TemporaryDirectory() as folder:
        kinds = json.loads(Path(client.download_artifacts(run_id, "band_effects.json", folder)).read_text())
        evaluation = json.loads(Path(client.download_artifacts(run_id, "evaluation.json", folder)).read_text())
    ended = run.info.end_time or run.info.start_time
    out = {"run_id": run_id, "published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ended / 1000)),
           "horizon_months": evaluation["horizon"], "estimand": evaluation["estimand"],
           "bands": evaluation["design"]["bands"], "kinds": kinds}
    if evaluation.get("policy"):
        out["targeting"] = targeting_summary(evaluation["policy"])
    return out


def targeting_summary(policy: dict) -> dict:
    """The published form of a learned rule: leaves, values and gain in points, whether checked."""
    from evaluation.limits import policy_interval_check

    def points(x):
        return {"points": 100 * x["value"], "ci_low_points": 100 * x["ci_low"], "ci_high_points": 100 * x["ci_high"]}
    v = policy["value"]
    return {"leaves": policy["rule"]["leaves"], "capacity": policy["capacity"],
            "value": points(v["learned_rule"]), "current_practice": points(v["current_practice"]),
            "gain": points(policy["gain_over_current_practice"]),
            "checked": policy_interval_check()["checked"],
            "note": "share in a job or education within the horizon if decisions followed the rule (valued on "
                    "persons it was not learned on); a group-level finding, never an instruction for one citizen"}
