"""The registered model scores on a local Dask cluster exactly as `bip score` does."""

import pandas as pd
import pytest


@pytest.fixture(scope="module")
def client(serving_store):
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        yield client


@pytest.mark.parametrize("at", ["latest", "every"])
def test_dask_scores_equal_bip_score(client, small_cohort_dir, tmp_path, at):
    from models.store import CHAMPION_URI
    from training.distributed import score_on_dask
    from training.scoring import score_cohort
    expected = score_cohort(small_cohort_dir, tmp_path / "scores.parquet", at, explain=True)
    got = score_on_dask(client, small_cohort_dir, CHAMPION_URI, at, explain=True, partitions=6)
    expected = expected.drop(columns="model_version").sort_values(["person_id", "as_of"]).reset_index(drop=True)
    assert len(got) == len(expected) and got["person_id"].nunique() == expected["person_id"].nunique()
    pd.testing.assert_frame_equal(got[expected.columns], expected, check_exact=False, rtol=0, atol=1e-12)
