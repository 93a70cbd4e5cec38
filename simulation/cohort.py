"""The synthetic BIP cohort: persons, caseworkers, the month-by-month run and its four tables."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contract import ACTIVITY_KINDS, BENEFIT_GROUPS, GENDERS, JOBCENTERS, ORIGINS
from features.schema import IndicatorSchema
from simulation.engine import NEVER, Engine, State, World
from simulation.params import TrueParameters
from simulation.posterior import TraitPosterior

JOBCENTER_WEIGHTS = np.array([0.08, 0.10, 0.10, 0.09, 0.06, 0.20, 0.06, 0.07, 0.12, 0.12])
TRUTH_EXTRA_MONTHS = 25  # the calendar runs past the register so truth can look 24 months ahead


def _day(text: str) -> int:
    return int(np.datetime64(text, "D").astype(np.int64))


def build_world(params: TrueParameters, rng: np.random.Generator) -> World:
    s, cw = params.raw["schedule"], params.raw["caseworker"]
    first = np.datetime64(s["first_enrolment"][:7], "M")
    last = np.datetime64(s["register_end"][:7], "M") + TRUTH_EXTRA_MONTHS
    months = np.arange(first, last + 1)
    n_jobcenters = len(JOBCENTERS)
    jobcenter_effect = rng.normal(0, params.raw["market"]["jobcenter_sd"], n_jobcenters)
    trend = params.raw["market"]["trend_per_year"] * np.arange(len(months) - 1) / 12.0
    per = cw["per_jobcenter"]
    world = World(
        month_start=months.astype("datetime64[D]").astype(np.int64),
        last_measurement_day=_day(s["last_measurement"]),
        market=jobcenter_effect[:, None] + trend[None, :],
        caseworker_jobcenter=np.repeat(np.arange(n_jobcenters), per),
        caseworker_optimism=(rng.random(n_jobcenters * per) < cw["optimistic_share"]).astype(float),
        per_jobcenter=per,
        first_year=int(str(first)[:4]),
        jobcenter_shift=rng.normal(0, params.raw["initial"]["jobcenter_shift_sd"], n_jobcenters),
    )
    if params.realism is not None:  # drawn after the default regime's, which they leave alone
        world.caseworker_leniency = rng.normal(0, params.realism.leniency_sd, n_jobcenters * per)
        world.caseworker_drift = rng.normal(0, params.realism.drift_sd_per_year, n_jobcenters * per)
    return world


@dataclass
class People:
    person_id: np.ndarray
    jobcenter: np.ndarray
    birth_year: np.ndarray
    gender: np.ndarray
    origin: np.ndarray
    benefit_group: np.ndarray
    enrolled_day: np.ndarray
    enrolled_month: np.ndarray
    latent: np.ndarray


def draw_people(n: int, params: TrueParameters, world: World, rng: np.random.Generator) -> People:
    s = params.raw["schedule"]
    ids = rng.choice(16**10, size=n, replace=False)
    enrolled = rng.integers(_day(s["first_enrolment"]), _day(s["last_enrolment"]) + 1, n)
    enrolled_month = np.searchsorted(world.month_start, enrolled, side="right") - 1
    year = (enrolled.astype("datetime64[D]").astype("datetime64[Y]").astype(int) + 1970)
    age = np.clip(np.rint(rng.normal(37, 11, n)), 18, 64).astype(int)
    return People(
        person_id=np.array([f"{i:010x}" for i in ids]),
        jobcenter=rng.choice(len(JOBCENTERS), size=n, p=JOBCENTER_WEIGHTS),
        birth_year=year - age,
        gender=rng.choice(len(GENDERS), size=n, p=[0.45, 0.55]),
        origin=rng.choice(len(ORIGINS), size=n, p=[0.70, 0.05, 0.25]),
        benefit_group=rng.choice(len(BENEFIT_GROUPS), size=n, p=[0.80, 0.12, 0.08]),
        enrolled_day=enrolled,
        enrolled_month=enrolled_month,
        latent=rng.standard_normal(n),
    )


def initial_state(people: People, params: TrueParameters, world: World, rng: np.random.Generator) -> State:
    n, k, a = len(people.person_id), len(params.scale_min), len(ACTIVITY_KINDS)
    per = world.per_jobcenter
    origin_effect = np.array([params.raw["static"]["origin"][o] for o in ORIGINS])[people.origin]
    return State(
        jobcenter=people.jobcenter,
        birth_year=people.birth_year,
        origin_effect=origin_effect,
        caseworker_rating=np.full((n, k), np.nan),
        citizen_rating=np.full((n, k), np.nan),
        caseworker=people.jobcenter * per + rng.integers(0, per, n),
        months_since_change=np.full(n, NEVER),
        next_due=np.zeros(n, dtype=np.int64),
        in_series=np.ones(n, dtype=bool),
        active=np.zeros((n, a), dtype=bool),
        activity_age=np.zeros((n, a), dtype=np.int64),
        exposed=np.zeros((n, a), dtype=bool),
        rating_effect=np.zeros(n),
        activity_start=np.zeros((n, a), dtype=np.int64),
    )


@dataclass
class CohortRun:
    people: People
    world: World
    job_month: np.ndarray             # (N,) month index of the first job/education month, -1 none
    log: dict                         # measurements, starts, ends
    snapshots: list                   # (person index, month, State[, trait log-likelihoods]) after each measurement
    register_months: int
    trait: np.ndarray | None = None   # (N,) realistic regime: the hidden trait
    posterior: TraitPosterior | None = None  # realistic regime: its grid and prior


def run_cohort(n: int, params: TrueParameters, seed: int, optimism: float | None = None,
               keep_snapshots: bool = True, progress=None) -> CohortRun:
    """Simulate the cohort month by month; `optimism` overrides every caseworker's trait.
    `progress(fraction)` is called after every month."""
    # the fourth stream (the hidden trait) leaves the first three, and so the default regime, alone
    world_seed, people_seed, run_seed, hidden_seed = np.random.SeedSequence(seed).spawn(4)
    world = build_world(params, np.random.default_rng(world_seed))
    if optimism is not None:
        world.caseworker_optimism = np.full_like(world.caseworker_optimism, optimism)
    people_rng = np.random.default_rng(people_seed)
    people = draw_people(n, params, world, people_rng)
    state = initial_state(people, params, world, people_rng)
    posterior = None
    if params.realism is not None:
        state.trait = np.random.default_rng(hidden_seed).standard_normal(n)
        state.leniency = np.zeros(n)
        posterior = TraitPosterior(n) if keep_snapshots else None  # only the truth needs it
    engine = Engine(params, world, np.random.default_rng(run_seed), posterior)
    register_end = np.datetime64(params.raw["schedule"]["register_end"][:7], "M")
    register_months = int(np.searchsorted(world.month_start, _day(str(register_end) + "-01"))) + 1
    job_month = np.full(n, -1)
    alive = np.ones(n, dtype=bool)
    log = {"measurements": [], "starts": [], "ends": []}
    snapshots = []
    for month in range(register_months):
        live = alive & (people.enrolled_month < month)
        engine.month_boundary(state, month, live, log["ends"])
        eta = engine.log_hazard(state, month)
        hazard = -np.expm1(-np.exp(eta))
        job = live & (engine.rng.random(n) < hazard)
        job_month[job] = month
        alive &= ~job
        if posterior is not None:  # a month without a job is evidence about the trait
            beta = params.realism.trait_hazard
            posterior.survive(np.nonzero(live & ~job)[0], eta - beta * state.trait, beta)
        draws = engine.draw(n)  # one row per person every month: counterfactual runs share them
        due, due_draws = engine.scheduled_measurements(state, month, alive & (people.enrolled_month < month), draws)
        engine.measure(state, due, state.next_due[due].copy(), False, due_draws, log=log)
        entering = np.nonzero(people.enrolled_month == month)[0]
        engine.measure(state, entering, people.enrolled_day[entering], True, engine.subset(draws, entering),
                       latent=people.latent, log=log)
        if keep_snapshots:
            for idx in (due, entering):
                if len(idx):
                    snapshots.append((idx, month, state.take(idx)) if posterior is None else
                                     (idx, month, state.take(idx), posterior.loglik[idx].copy(),
                                      posterior.before[idx].copy()))
        if progress:
            progress((month + 1) / register_months)
    return CohortRun(people, world, job_month, log, snapshots, register_months, state.trait, posterior)


def _dates(days: np.ndarray) -> pd.Series:
    return pd.Series(np.asarray(days, dtype="int64").astype("datetime64[D]")).astype("datetime64[s]")


def cohort_tables(run: CohortRun, schema: IndicatorSchema, params: TrueParameters,
                  rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    """The four contract tables from a cohort run."""
    people = run.people
    persons = pd.DataFrame({
        "person_id": people.person_id,
        "jobcenter": np.array(JOBCENTERS)[people.jobcenter],
        "birth_year": people.birth_year.astype("int64"),
        "gender": np.array(GENDERS)[people.gender],
        "origin": np.array(ORIGINS)[people.origin],
        "benefit_group": np.array(BENEFIT_GROUPS)[people.benefit_group],
        "enrolled_on": _dates(people.enrolled_day),
    })
    return {
        "persons": persons,
        "measurements": _measurement_table(run, schema),
        "activities": _activity_table(run),
        "outcomes": _outcome_table(run, params, rng),
    }


def caseworker_ids(world: World) -> np.ndarray:
    per = world.per_jobcenter
    return np.array([f"cw-{JOBCENTERS[j][:3].lower()}-{c % per:02d}"
                     for c, j in enumerate(world.caseworker_jobcenter)])


def _measurement_table(run: CohortRun, schema: IndicatorSchema) -> pd.DataFrame:
    parts = run.log["measurements"]
    idx = np.concatenate([p[0] for p in parts])
    day = np.concatenate([p[1] for p in parts])
    caseworker = np.concatenate([p[2] for p in parts])
    rating_cw = np.concatenate([p[3] for p in parts])
    rating_cit = np.concatenate([p[4] for p in parts])
    answered = np.concatenate([p[5] for p in parts])
    ids = caseworker_ids(run.world)[caseworker]
    base = {"person_id": run.people.person_id[idx], "measured_at": _dates(day), "caseworker_id": ids}
    cw = pd.DataFrame({**base, "respondent": "caseworker"})
    cit = pd.DataFrame({**base, "respondent": "citizen"})
    for j, key in enumerate(schema.keys):
        cw[key] = pd.array(rating_cw[:, j], dtype="Int64")
        cit[key] = pd.array(np.where(np.isnan(rating_cit[:, j]), np.nan, rating_cit[:, j]), dtype="Int64")
    cit = cit[answered]
    table = pd.concat([cw, cit], ignore_index=True)
    table = table[["person_id", "measured_at", "respondent", "caseworker_id", *schema.keys]]
    return table.sort_values(["person_id", "measured_at", "respondent"], kind="stable").reset_index(drop=True)


def _activity_table(run: CohortRun) -> pd.DataFrame:
    starts, ends = run.log["starts"], run.log["ends"]
    if not starts:
        return pd.DataFrame({"person_id": [], "kind": [], "start": _dates([]), "end": _dates([])})
    person = np.concatenate([s[0] for s in starts])
    kind = np.concatenate([s[1] for s in starts])
    start = np.concatenate([s[2] for s in starts])
    table = pd.DataFrame({"person": person, "kind": kind, "start": start})
    # each (person, kind) runs one spell at a time, so the n-th start pairs with the n-th end
    table["spell"] = table.groupby(["person", "kind"]).cumcount()
    if ends:
        end = pd.DataFrame({"person": np.concatenate([e[0] for e in ends]),
                            "kind": np.concatenate([e[1] for e in ends]),
                            "end": np.concatenate([e[2] for e in ends])})
        end["spell"] = end.groupby(["person", "kind"]).cumcount()
        table = table.merge(end, on=["person", "kind", "spell"], how="left")
    else:
        table["end"] = np.nan
    # an activity still running when the person starts a job ends the day before (inf: no job)
    job = run.job_month[table["person"].to_numpy()]
    job_day = np.where(job >= 0, run.world.month_start[np.maximum(job, 0)] - 1.0, np.inf)
    end = np.fmin(table["end"].to_numpy(dtype=float), job_day)  # fmin: a missing end takes the job day
    end[np.isinf(end)] = np.nan
    result = pd.DataFrame({
        "person_id": run.people.person_id[table["person"].to_numpy()],
        "kind": np.array(ACTIVITY_KINDS)[table["kind"].to_numpy()],
        "start": _dates(table["start"].to_numpy()),
    })
    result["end"] = pd.to_datetime(end, unit="D").astype("datetime64[s]")
    return result.sort_values(["person_id", "start", "kind"], kind="stable").reset_index(drop=True)


def _outcome_table(run: CohortRun, params: TrueParameters, rng: np.random.Generator) -> pd.DataFrame:
    """Monthly register status from the enrolment month to the register's end."""
    o = params.raw["outcome"]
    first = run.people.enrolled_month
    count = run.register_months - first
    person = np.repeat(np.arange(len(first)), count)
    month = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count) + first[person]
    job = run.job_month[person]
    since_job = np.where(job >= 0, month - job, -1)
    # after the first job month: job or education, with a chance each month of falling back
    u_back = rng.random(len(person))
    fallen = pd.Series((since_job >= 1) & (u_back < o["leave_job_per_month"])).groupby(person).cummax()
    back_on_benefit = fallen.to_numpy() & (since_job >= 1)
    education = rng.random(len(first)) < o["education_share"]
    status = np.where(since_job >= 0, np.where(education[person], "education", "job"), "benefit")
    status = np.where(back_on_benefit, "benefit", status)
    other = (status == "benefit") & (rng.random(len(person)) < o["other_share"])
    status = np.where(other, "other", status)
    return pd.DataFrame({
        "person_id": run.people.person_id[person],
        "month": _dates(run.world.month_start[month]),
        "status": status,
    })
