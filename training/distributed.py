"""Training and scoring a national cohort on a Dask cluster.

Training: with BIP_DASK_ADDRESS set, every booster of `bip train` (the search folds and the final
heads) is fitted by xgboost.dask on the cluster (`fit_trees_on_dask`), the rows split into one
partition per worker thread; the rest of the pipeline (labels, features, calibration, metrics)
is unchanged, so the metrics equal local training's within noise (the quantile sketch is merged
from the partitions, so splits can differ slightly).

Scoring:
The persons are split into partitions by a hash of their id; each task reads only its persons'
rows from the Parquet tables (a filter pushed down to the reader), loads the model once per
worker process, and runs the same ScoringModel.score_frame as `bip score`. The tables must be
readable by every worker (a shared file system or an object store URL that pandas can open) and
MLFLOW_TRACKING_URI must point the workers at the same registry.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from models.batch import score_tables


def partition_of(person_id: str, partitions: int) -> int:
    return int(hashlib.md5(str(person_id).encode()).hexdigest()[:8], 16) % partitions


@lru_cache(maxsize=4)
def _model(uri: str):
    from models.store import configure_tracking, load_scoring_model
    configure_tracking()
    return load_scoring_model(uri)


def score_partition(data: str, person_ids: list[str], uri: str, at: str, explain: bool,
                    model_version: str | None = None) -> pd.DataFrame:
    """One task: the persons' rows only, scored by the same score_tables as `bip score`."""
    wanted = [("person_id", "in", list(person_ids))]
    tables = {name: pd.read_parquet(Path(data) / f"{name}.parquet", filters=wanted)
              for name in ("persons", "measurements", "activities") if (Path(data) / f"{name}.parquet").exists()}
    return score_tables(_model(uri), tables, at, explain, model_version=model_version)


def score_on_dask(client, data: str | Path, uri: str, at: str = "latest", explain: bool = False,
                  partitions: int | None = None, model_version: str | None = None) -> pd.DataFrame:
    """Score every person in `data` on the cluster behind `client`; rows sorted like `bip score`.
    `uri` should be pinned to a version (models:/NAME/VERSION) so every worker loads the same one."""
    persons = pd.read_parquet(Path(data) / "persons.parquet", columns=["person_id"])["person_id"]
    partitions = partitions or max(1, 2 * sum(client.nthreads().values()))
    groups = persons.groupby(persons.map(lambda p: partition_of(p, partitions))).apply(list)
    futures = [client.submit(score_partition, str(data), ids, uri, at, explain, model_version, pure=False) for ids in groups]
    frames = client.gather(futures)
    result = pd.concat(frames, ignore_index=True)
    return result.sort_values(["person_id", "as_of"], kind="stable").reset_index(drop=True)


@lru_cache(maxsize=2)
def dask_client(address: str):
    """One client per scheduler address for this process (connecting costs ~0.1 s; a training
    run fits dozens of boosters)."""
    from distributed import Client
    return Client(address, set_as_default=False)


def _dask_matrix(client, X: np.ndarray, y: np.ndarray):
    import dask.array as da
    from xgboost import dask as dxgb
    parts = max(1, min(len(y) // 1000, sum(client.nthreads().values())))
    rows = -(-len(y) // parts)
    return dxgb.DaskDMatrix(client, da.from_array(np.ascontiguousarray(X, dtype=np.float32), chunks=(rows, -1)),
                            da.from_array(np.asarray(y, dtype=np.float32), chunks=rows))


def fit_trees_on_dask(address: str, X: np.ndarray, y: np.ndarray, params: dict, rounds: int, X_val=None, y_val=None,
                      early_stopping: int = 40):
    """models.estimators.fit_trees on the Dask cluster at `address` (xgboost.dask): the same
    parameters, rounds and early stopping; returns (booster, best round count). The booster is an
    ordinary xgboost.Booster, so scoring and explanations are unchanged."""
    from xgboost import dask as dxgb
    client = dask_client(address)
    params = {k: v for k, v in params.items() if k != "nthread"}  # each worker uses its own threads
    # as_current: the DaskDMatrix persists its chunks through the current client; if another
    # client of this process were current (a notebook's, the cohort job's) it would wait forever
    # for futures this client does not own.
    with client.as_current():
        train = _dask_matrix(client, X, y)
        if X_val is None:
            output = dxgb.train(client, params, train, num_boost_round=rounds)
            return output["booster"], rounds
        valid = _dask_matrix(client, X_val, y_val)
        output = dxgb.train(client, params, train, num_boost_round=rounds, evals=[(valid, "valid")],
                            early_stopping_rounds=early_stopping, verbose_eval=False)
    booster = output["booster"]
    return booster, booster.best_iteration + 1
