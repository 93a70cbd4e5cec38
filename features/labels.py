"""Labels: was the citizen in a job or education within the horizon after as_of."""

from __future__ import annotations

import pandas as pd

from features.contract import SUCCESS_STATUSES


def label_occasions(occasions: pd.DataFrame, outcomes: pd.DataFrame, horizon_months: int) -> pd.DataFrame:
    """Label each (person_id, as_of) whose horizon is fully covered by the register.

    label = 1 when a month with status job or education starts in (as_of, as_of + horizon].
    Occasions whose window reaches past the person's last register month are dropped (censored),
    never labelled 0.

    Parameters
    ----------
    occasions : DataFrame with person_id and as_of (datetime), one row per occasion.
    outcomes : the register table (person_id, month, status).
    horizon_months : the horizon H in months.

    Returns
    -------
    DataFrame with person_id, as_of and label (int8), observed occasions only.
    """
    frame = occasions[["person_id", "as_of"]].copy()
    frame["as_of"] = frame["as_of"].astype("datetime64[s]")
    window_end = frame["as_of"] + pd.DateOffset(months=horizon_months)
    last_window_month = window_end.dt.to_period("M").dt.to_timestamp().astype("datetime64[s]")
    register_end = outcomes.groupby("person_id")["month"].max().astype("datetime64[s]")
    covered = frame["person_id"].map(register_end) >= last_window_month
    success = outcomes.loc[outcomes["status"].isin(SUCCESS_STATUSES), ["person_id", "month"]]
    success = success.assign(month=success["month"].astype("datetime64[s]")).sort_values("month")
    frame = frame.assign(_row=range(len(frame))).sort_values("as_of")
    first_success = pd.merge_asof(frame, success, left_on="as_of", right_on="month", by="person_id",
                                  direction="forward", allow_exact_matches=False)
    first_success = first_success.set_index("_row").sort_index()["month"]
    label = (first_success.to_numpy() <= window_end.to_numpy())
    result = occasions[["person_id", "as_of"]].copy()
    result["as_of"] = frame.sort_values("_row")["as_of"].to_numpy()
    result["label"] = pd.array(label, dtype="int8")
    return result[covered.to_numpy()].reset_index(drop=True)
