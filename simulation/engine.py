"""The simulator's month-by-month mechanism, vectorised over a batch of units.

One engine serves two purposes, so they cannot drift apart:
- the cohort run (`record=True`): each unit is a person, job starts are drawn, events are logged;
- the truth run (`record=False`): each unit is a copy of one person's state right after a
  measurement, run forward with the job hazard integrated exactly (survival multiplied month by
  month, Rao-Blackwellised), so only future measurements, activities and caseworker changes are
  Monte Carlo.

Every call draws random arrays of a fixed shape whatever the state, so two runs with the same seed
share their random numbers (common random numbers for counterfactuals) and a seed fixes the files.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

import numpy as np

from simulation.params import TrueParameters

if TYPE_CHECKING:
    from simulation.posterior import TraitPosterior


@dataclass
class World:
    """Calendar, local labour markets and caseworkers: fixed for a cohort."""

    month_start: np.ndarray        # (M+1,) day numbers of the first day of each month
    last_measurement_day: int
    market: np.ndarray             # (J, M) log-hazard of the local labour market by month
    caseworker_jobcenter: np.ndarray  # (C,)
    caseworker_optimism: np.ndarray   # (C,) 1.0 optimistic, 0.0 pessimistic
    per_jobcenter: int
    first_year: int
    jobcenter_shift: np.ndarray    # (J,) shift of initial readiness by jobcentre
    # realistic regime only: each caseworker's rating offset (steps) and its drift per year
    caseworker_leniency: np.ndarray | None = None  # (C,)
    caseworker_drift: np.ndarray | None = None     # (C,)

    @property
    def n_months(self) -> int:
        return len(self.month_start) - 1

    def leniency(self, caseworker: np.ndarray, day: np.ndarray) -> np.ndarray:
        """The offset in steps that `caseworker` adds to every signal rating on `day`."""
        years = (np.asarray(day) - self.month_start[0]) / 365.25
        return self.caseworker_leniency[caseworker] + self.caseworker_drift[caseworker] * years


@dataclass
class State:
    """Everything the mechanism needs about a unit; all of it is observable from the history."""

    jobcenter: np.ndarray          # (B,) int
    birth_year: np.ndarray         # (B,) int
    origin_effect: np.ndarray      # (B,) float
    caseworker_rating: np.ndarray  # (B, K) float, latest caseworker ratings
    citizen_rating: np.ndarray     # (B, K) float, latest citizen ratings (NaN: not answered)
    caseworker: np.ndarray         # (B,) int
    months_since_change: np.ndarray  # (B,) int, large when never changed
    next_due: np.ndarray           # (B,) int day of the next scheduled measurement
    in_series: np.ndarray          # (B,) bool, still being measured
    active: np.ndarray             # (B, A) bool, activity of that kind ongoing
    activity_age: np.ndarray       # (B, A) int, month boundaries passed since start
    exposed: np.ndarray            # (B, A) bool, active at a month start since the last measurement
    rating_effect: np.ndarray      # (B,) log-hazard of the latest ratings (changes only when measured)
    activity_start: np.ndarray = field(default=None)  # (B, A) int day, cohort run only
    # realistic regime only: the hidden trait (never recorded) and the offset of the rater who
    # gave the latest caseworker ratings (known to the truth, not in the tables)
    trait: np.ndarray = field(default=None)     # (B,)
    leniency: np.ndarray = field(default=None)  # (B,)

    def take(self, index: np.ndarray) -> "State":
        return State(**{f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[index]
                        for f in fields(self)})

    def copy(self) -> "State":
        return self.take(np.arange(len(self.jobcenter)))


NEVER = 10_000


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p):
    return np.log(p / (1.0 - p))


class Engine:
    def __init__(self, params: TrueParameters, world: World, rng: np.random.Generator,
                 posterior: "TraitPosterior | None" = None):
        self.p = params
        self.world = world
        self.rng = rng
        self.centre = (params.scale_min + params.scale_max) / 2.0
        # realistic cohort run: the likelihood of what is observed, per value of the hidden trait
        self.posterior = posterior
        self.signal = np.arange(len(params.scale_min)) != params.belief_index  # rated with leniency

    # ---- pieces of the mechanism -------------------------------------------------------------
    def corrected(self, state: State) -> np.ndarray:
        """The latest caseworker ratings net of their rater's offset (the ratings themselves in
        the default regime, which has no rater effects)."""
        if state.leniency is None:
            return state.caseworker_rating
        return state.caseworker_rating - state.leniency[:, None] * self.signal

    def assignment_readiness(self, state: State) -> np.ndarray:
        """The readiness a caseworker assigns programmes by: from the ratings as recorded (a
        lenient rater acts on their own lenient rating), so rater offsets do not confound."""
        return state.caseworker_rating @ self.p.readiness_weights

    def log_hazard(self, state: State, month: np.ndarray) -> np.ndarray:
        """Monthly cloglog job hazard for the month starting at `month`, from the measured state
        (and, in the realistic regime, the hidden trait)."""
        p, raw = self.p, self.p.raw
        eta = raw["hazard"]["intercept"] + state.rating_effect + self.world.market[state.jobcenter, month]
        if state.trait is not None:
            eta = eta + p.realism.trait_hazard * state.trait
        age = self.world.first_year + month // 12 - state.birth_year
        eta = eta + raw["static"]["age_per_year_over_40"] * np.maximum(age - 40, 0) + state.origin_effect
        recent = (state.months_since_change >= 1) & (state.months_since_change <= raw["caseworker"]["change_months"])
        eta = eta + raw["caseworker"]["change_hazard"] * recent
        job_running = (state.active & p.job_oriented).any(axis=1)
        eta = eta + state.active @ p.hazard_alone + (state.active @ p.hazard_parallel) * job_running
        return eta

    def month_boundary(self, state: State, month: np.ndarray, live: np.ndarray, ends: list | None):
        """Activities end at month starts (never at the first one after their start)."""
        u = self.rng.random(state.active.shape, dtype=np.float32)
        ending = live[:, None] & state.active & (state.activity_age >= 1) & (u < self.p.end_per_month)
        if ends is not None and ending.any():
            rows, kinds = np.nonzero(ending)
            ends.append((rows, kinds, self.world.month_start[np.broadcast_to(month, live.shape)[rows]] - 1))
        state.active &= ~ending
        state.activity_age += (live[:, None] & state.active)
        state.exposed |= live[:, None] & state.active
        state.months_since_change += live

    def rate(self, state: State, idx: np.ndarray, first: bool, latent: np.ndarray | None, draws: dict,
             day: np.ndarray | None = None):
        """New caseworker and citizen ratings at a measurement for the units `idx`."""
        if self.p.realism is not None:
            return self._rate_realistic(state, idx, first, latent, draws, day)
        p, raw = self.p, self.p.raw
        z = draws["z"]
        if first:
            init = raw["initial"]
            shift = self.world.jobcenter_shift[state.jobcenter[idx]][:, None]
            level = init["mean"] + shift + init["latent_loading"] * latent[idx][:, None] + init["noise"] * z
        else:
            t = raw["transition"]
            old = state.caseworker_rating[idx]
            exposed = state.exposed[idx]
            job_running = (exposed & p.job_oriented).any(axis=1)
            progression = exposed @ p.progression_alone + (exposed @ p.progression_parallel) * job_running
            level = (old + t["drift"] + t["reversion"] * (raw["initial"]["mean"] - old) + progression[:, None]
                     + t["noise"] * z + t["common_noise"] * draws["z_common"][:, None])
        level = np.clip(np.rint(level), p.scale_min, p.scale_max)
        b = raw["belief"]
        readiness = level @ p.readiness_weights
        belief = (b["intercept"] + b["readiness_slope"] * (readiness - 3.0)
                  + b["optimism_shift"] * self.world.caseworker_optimism[state.caseworker[idx]]
                  + b["noise"] * draws["z_belief"])
        bi = p.belief_index
        level[:, bi] = np.clip(np.rint(belief), p.scale_min[bi], p.scale_max[bi])
        state.caseworker_rating[idx] = level
        c = raw["citizen"]
        answered = draws["u_citizen"] >= c["missing"]
        citizen = np.clip(np.rint(level + c["bias"] + c["noise"] * draws["z_citizen"]),
                          p.scale_min, p.scale_max)
        citizen[:, ~p.citizen_keys] = np.nan
        keep = state.citizen_rating[idx]
        citizen = np.where(answered[:, None], citizen, keep)
        state.citizen_rating[idx] = citizen
        state.rating_effect[idx] = self.rating_effect(level, citizen)
        return answered

    def rating_effect(self, caseworker: np.ndarray, citizen: np.ndarray) -> np.ndarray:
        """Log-hazard of measured ratings; the caseworker's rating stands in for a missing citizen answer.
        Realistic regime: `caseworker` is net of the rater's offset, and one pair interacts."""
        citizen = np.where(np.isnan(citizen), caseworker, citizen)
        effect = (caseworker - self.centre) @ self.p.hazard_cw + (citizen - self.centre) @ self.p.hazard_cit
        if self.p.realism is not None:
            first, second, coefficient = self.p.realism.interaction
            effect = effect + coefficient * ((caseworker[:, first] - self.centre[first])
                                             * (caseworker[:, second] - self.centre[second]))
        return effect

    def _rate_realistic(self, state: State, idx: np.ndarray, first: bool, latent: np.ndarray | None,
                        draws: dict, day: np.ndarray):
        """The realistic regime's ratings: the hidden trait moves the signal ratings and the belief,
        each rater adds a drifting offset to the signal ratings, and the citizen's form is skipped
        more often by people doing badly (missing not at random)."""
        p, raw, r = self.p, self.p.raw, self.p.realism
        z, trait = draws["z"], state.trait[idx]
        offset = self.world.leniency(state.caseworker[idx], day)
        if first:
            init = raw["initial"]
            base = np.broadcast_to(init["mean"] + self.world.jobcenter_shift[state.jobcenter[idx]][:, None], z.shape)
            loading, common_sd, noise_sd, common = r.trait_initial, init["latent_loading"], init["noise"], latent[idx]
        else:
            t = raw["transition"]
            old = self.corrected(state.take(idx))
            exposed = state.exposed[idx]
            job_running = (exposed & p.job_oriented).any(axis=1)
            progression = exposed @ p.progression_alone + (exposed @ p.progression_parallel) * job_running
            base = old + t["drift"] + t["reversion"] * (raw["initial"]["mean"] - old) + progression[:, None]
            loading = t["reversion"] * r.trait_pull
            common_sd, noise_sd, common = t["common_noise"], t["noise"], draws["z_common"]
        level = base + loading * trait[:, None] + common_sd * common[:, None] + noise_sd * z
        recorded = np.clip(np.rint(level + offset[:, None]), p.scale_min, p.scale_max)
        corrected = recorded - offset[:, None] * self.signal
        readiness = corrected @ p.readiness_weights
        b = raw["belief"]
        belief_base = (b["intercept"] + b["readiness_slope"] * (readiness - 3.0)
                       + b["optimism_shift"] * self.world.caseworker_optimism[state.caseworker[idx]])
        bi = p.belief_index
        recorded[:, bi] = np.clip(np.rint(belief_base + r.trait_belief * trait + b["noise"] * draws["z_belief"]),
                                  p.scale_min[bi], p.scale_max[bi])
        corrected[:, bi] = recorded[:, bi]
        state.caseworker_rating[idx] = recorded
        state.leniency[idx] = offset
        skip_base = _logit(r.missing_base) - r.missing_readiness * (readiness - 3.0)
        answered = draws["u_citizen"] >= _sigmoid(skip_base - r.missing_trait * trait)
        c = raw["citizen"]
        citizen = np.clip(np.rint(corrected + c["bias"] + c["noise"] * draws["z_citizen"]), p.scale_min, p.scale_max)
        citizen[:, ~p.citizen_keys] = np.nan
        citizen = np.where(answered[:, None], citizen, state.citizen_rating[idx])
        state.citizen_rating[idx] = citizen
        state.rating_effect[idx] = self.rating_effect(corrected, citizen)
        if self.posterior is not None:
            post = self.posterior
            post.ratings(idx, recorded[:, self.signal] - offset[:, None], base[:, self.signal],
                         loading[self.signal], common_sd, noise_sd, p.scale_min[self.signal] - offset[:, None],
                         p.scale_max[self.signal] - offset[:, None])
            post.ratings(idx, recorded[:, [bi]], belief_base[:, None], np.array([r.trait_belief]), 0.0, b["noise"],
                         np.full((len(idx), 1), p.scale_min[bi]), np.full((len(idx), 1), p.scale_max[bi]))
            post.bernoulli(idx, skip_base, -r.missing_trait, ~answered)
        return answered

    def assign(self, state: State, idx: np.ndarray, day: np.ndarray, draws: dict, starts: list | None):
        """Caseworkers start activities at a measurement, by readiness (confounded)."""
        p = self.p
        readiness = self.assignment_readiness(state.take(idx)) if len(idx) else np.zeros(0)
        logit = p.assign_intercept + p.assign_readiness * (readiness[:, None] - 3.0)
        if p.realism is None:
            prob = _sigmoid(logit)
        else:
            prob = _sigmoid(logit + p.realism.take_up * state.trait[idx][:, None])
        start = (draws["u_assign"] < prob) & ~state.active[idx]
        if self.posterior is not None:
            self.posterior.before_assignment(idx)
            eligible = ~state.active[idx]
            rows, kinds = np.nonzero(eligible)
            self.posterior.bernoulli(idx[rows], logit[rows, kinds], p.realism.take_up[kinds], start[rows, kinds])
        if starts is not None and start.any():
            rows, kinds = np.nonzero(start)
            starts.append((idx[rows], kinds, day[rows]))
        state.active[idx] |= start
        age = state.activity_age[idx]
        age[start] = 0
        state.activity_age[idx] = age
        if state.activity_start is not None:
            s = state.activity_start[idx]
            s[start] = np.broadcast_to(day[:, None], start.shape)[start]
            state.activity_start[idx] = s

    def schedule_next(self, state: State, idx: np.ndarray, day: np.ndarray, draws: dict):
        s = self.p.raw["schedule"]
        late = draws["u_late"] < s["late_share"]
        jitter = np.where(late, 1 + np.floor(draws["u_delay"] * s["late_max_days"]),
                          np.rint((2 * draws["u_delay"] - 1) * s["jitter_days"]))
        state.next_due[idx] = day + s["spacing_days"] + jitter.astype(np.int64)

    def measure(self, state: State, idx: np.ndarray, day: np.ndarray, first: bool, draws: dict,
                latent: np.ndarray | None = None, log: dict | None = None):
        """One measurement occasion: caseworker change, ratings, new activities, next date."""
        if not first:
            cw = self.p.raw["caseworker"]
            change = draws["u_change"] < cw["change_per_measurement"]
            per = self.world.per_jobcenter
            current = state.caseworker[idx]
            pick = np.floor(draws["u_pick"] * (per - 1)).astype(np.int64)
            offset = current % per
            pick = np.where(pick >= offset, pick + 1, pick)  # anyone in the jobcentre but the current one
            state.caseworker[idx] = np.where(change, state.jobcenter[idx] * per + pick, current)
            state.months_since_change[idx] = np.where(change, 0, state.months_since_change[idx])
        answered = self.rate(state, idx, first, latent, draws, day)
        if log is not None:
            log["measurements"].append((idx, day, state.caseworker[idx].copy(),
                                        state.caseworker_rating[idx].copy(),
                                        state.citizen_rating[idx].copy(), answered,
                                        state.months_since_change[idx].copy()))
        state.exposed[idx] = state.active[idx]
        self.assign(state, idx, day, draws, log["starts"] if log is not None else None)
        self.schedule_next(state, idx, day, draws)

    def draw(self, n: int) -> dict:
        """Random numbers for n measured units (float32: the mechanism needs no more)."""
        rng, k, a = self.rng, len(self.p.scale_min), len(self.p.kinds)
        normal = lambda *shape: rng.standard_normal(shape, dtype=np.float32)  # noqa: E731
        uniform = lambda *shape: rng.random(shape, dtype=np.float32)  # noqa: E731
        return {
            "z": normal(n, k), "z_common": normal(n), "z_belief": normal(n), "z_citizen": normal(n, k),
            "u_citizen": uniform(n), "u_assign": uniform(n, a), "u_change": uniform(n),
            "u_pick": uniform(n), "u_late": uniform(n), "u_delay": uniform(n),
            "u_stop": uniform(n), "u_missed": uniform(n),
        }

    @staticmethod
    def subset(draws: dict, rows: np.ndarray) -> dict:
        return {name: values[rows] for name, values in draws.items()}

    def scheduled_measurements(self, state: State, month, live: np.ndarray, draws: dict | None = None):
        """Units measured this month, and their random numbers; stopped series and missed visits
        are applied. With `draws` (one row per unit) the numbers come from it, so runs that differ
        only in outcomes share them; without, only the due units draw."""
        s = self.p.raw["schedule"]
        next_month_start = self.world.month_start[np.asarray(month) + 1]
        due = np.nonzero(live & state.in_series & (state.next_due < next_month_start))[0]
        draws = self.subset(draws, due) if draws is not None else self.draw(len(due))
        past_end = state.next_due[due] > self.world.last_measurement_day
        stop = past_end | (draws["u_stop"] < s["series_stop"])
        state.in_series[due[stop]] = False
        missed = ~stop & (draws["u_missed"] < s["missed"])
        state.next_due[due[missed]] += s["spacing_days"]
        keep = ~stop & ~missed
        return due[keep], self.subset(draws, np.nonzero(keep)[0])
