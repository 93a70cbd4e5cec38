"""The simulator: determinism, BIP's published shape and rates, truth consistent with outcomes."""

import json

import numpy as np
import pandas as pd
import pytest

from features.contract import TABLES
from features.labels import label_occasions
from simulation.cohort import cohort_tables, run_cohort
from simulation.params import load_true_parameters
from simulation.simulate import simulate


def _read(folder):
    return {name: pd.read_parquet(folder / f"{name}.parquet") for name in (*TABLES, "truth_probabilities")}


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    runs = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        simulate(persons=150, seed=seed, out=tmp_path / name, paths=4, effect_paths=4)
        runs[name] = _read(tmp_path / name)
    for table in runs["a"]:
        pd.testing.assert_frame_equal(runs["a"][table], runs["b"][table])
    assert (tmp_path / "a" / "truth.json").read_text() == (tmp_path / "b" / "truth.json").read_text()
    assert not runs["a"]["measurements"].equals(runs["c"]["measurements"])


@pytest.fixture(scope="module")
def default_size_cohort(schema):
    """BIP's size without the (slower) truth: 4,000 persons, seed 7."""
    params = load_true_parameters(schema)
    run = run_cohort(4000, params, seed=7, keep_snapshots=False)
    return cohort_tables(run, schema, params, np.random.default_rng(0))


def test_bip_shape(default_size_cohort):
    t = default_size_cohort
    m = t["measurements"]
    occasions = m[["person_id", "measured_at"]].drop_duplicates()
    assert len(t["persons"]) == 4000
    assert t["persons"]["jobcenter"].nunique() == 10
    assert 250 <= m["caseworker_id"].nunique() <= 300
    assert 24_000 <= len(occasions) <= 31_000            # BIP: about 27,000
    assert 6.0 <= len(occasions) / 4000 <= 7.8           # BIP: about 6-7 per person
    dates = pd.to_datetime(m["measured_at"])
    assert dates.min() >= pd.Timestamp("2013-01-01") and dates.max() <= pd.Timestamp("2016-12-31")
    citizen = m[m["respondent"] == "citizen"]
    caseworker = m[m["respondent"] == "caseworker"]
    assert citizen["caseworker_belief"].isna().all() and citizen["concentration"].isna().all()
    assert caseworker.drop(columns=["person_id", "measured_at", "respondent", "caseworker_id"]).notna().all().all()
    spacing = caseworker.sort_values("measured_at").groupby("person_id")["measured_at"].diff().dt.days.dropna()
    assert 85 <= spacing.median() <= 100 and (spacing > 120).mean() > 0.05  # some missed and late
    changes = caseworker.groupby("person_id")["caseworker_id"].nunique()
    assert 0.32 <= (changes > 1).mean() <= 0.50          # BIP: 40% had at least one change


def test_people_leave_the_series_when_they_get_a_job(default_size_cohort):
    t = default_size_cohort
    jobs = t["outcomes"][t["outcomes"]["status"].isin(["job", "education"])]
    first_job = jobs.groupby("person_id")["month"].min()
    last_measured = t["measurements"].groupby("person_id")["measured_at"].max()
    both = pd.concat([first_job, last_measured], axis=1, join="inner")
    assert (both["measured_at"] < both["month"]).all()


def test_published_rates(default_size_cohort, schema):
    t = default_size_cohort
    cw = t["measurements"][t["measurements"]["respondent"] == "caseworker"]
    occasions = cw[["person_id", "measured_at", "caseworker_belief"]].rename(columns={"measured_at": "as_of"})
    labelled = label_occasions(occasions, t["outcomes"], 12).merge(occasions, on=["person_id", "as_of"])
    belief = labelled["caseworker_belief"]
    assert 0.04 <= labelled["label"].mean() <= 0.08                      # BIP: about 6%
    assert 0.20 <= labelled.loc[belief == 5, "label"].mean() <= 0.38     # BIP: about 27%
    assert labelled.loc[belief <= 2, "label"].mean() <= 0.02             # BIP: about 1%
    share = cw["caseworker_belief"].value_counts(normalize=True)
    assert 0.04 <= share[5] <= 0.10 and 0.14 <= share[4] <= 0.26 and 0.38 <= share[1] + share[2] <= 0.60


def test_truth_is_consistent_with_the_outcomes_it_generated(small_tables, small_cohort_dir):
    truth = pd.read_parquet(small_cohort_dir / "truth_probabilities.parquet")
    occasions = small_tables["measurements"][["person_id", "measured_at"]].drop_duplicates()
    assert len(truth) == len(occasions)
    assert truth[["p_3m", "p_6m", "p_12m", "p_24m"]].apply(lambda c: c.between(0, 1)).all().all()
    assert (truth["p_3m"] <= truth["p_6m"]).all() and (truth["p_12m"] <= truth["p_24m"]).all()
    for horizon in (6, 12):
        labelled = label_occasions(occasions.rename(columns={"measured_at": "as_of"}),
                                   small_tables["outcomes"], horizon).merge(truth, on=["person_id", "as_of"])
        p = labelled[f"p_{horizon}m"]
        # labels are Bernoulli(p) given the history: their sum sits within a few SDs of sum(p);
        # occasions of one person are dependent, so allow 4 SDs
        sd = np.sqrt((p * (1 - p)).sum())
        assert abs(labelled["label"].sum() - p.sum()) <= 4 * sd + 1
        high, low = p >= p.quantile(0.8), p <= p.quantile(0.5)
        assert labelled.loc[high, "label"].mean() > 3 * labelled.loc[low, "label"].mean()


def test_truth_json_holds_parameters_and_effects(small_cohort_dir):
    truth = json.loads((small_cohort_dir / "truth.json").read_text())
    assert truth["parameters"]["hazard"]["indicator"]["caseworker_belief"] > 0
    effects = truth["intervention_effects"]
    assert effects["loentilskud"]["att_12m"] > 0 and effects["virksomhedspraktik"]["att_12m"] > 0
    assert truth["probability_method"]["mc_se_mean"]["p_12m"] < 0.02
    assert 1.15 <= truth["caseworker_optimism_effect"]["risk_ratio_12m"] <= 1.55    # BIP: 1.32
    assert 0.6 <= truth["caseworker_change"]["risk_ratio_12m"] <= 0.9             # BIP: 0.78


def test_job_oriented_interventions_work_alone_others_only_in_parallel(schema):
    params = load_true_parameters(schema)
    job = params.job_oriented
    assert (params.hazard_alone[job] > 0).all() and (params.hazard_alone[~job] == 0).all()
    assert (params.hazard_parallel[~job] > 0).all()
    assert (params.progression_alone[job] > 0).all() and (params.progression_alone[~job] == 0).all()
