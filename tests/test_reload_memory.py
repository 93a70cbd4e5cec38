"""Reloads must not leave memory behind (issue 22's soak: worker memory flat under a reload a minute).

XGBoost keeps the answer buffers of its C API calls per thread and booster and frees a thread's
buffers only when the booster is freed on that same thread (dmlc/xgboost#2109). The service
loads a model on one thread-pool thread and dropped it on another at a later reload, so every
reload left the compiled boosters' buffers behind. These tests check the rule that prevents it,
with weak references (not process memory): a booster that was called is freed on the thread that
called it, and a reload keeps no old model alive."""

from __future__ import annotations

import gc
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest


def _freed_on(obj, log: list) -> None:
    """Record the thread that frees `obj` (a finalizer runs where the last reference is dropped)."""
    weakref.finalize(obj, lambda: log.append(threading.get_ident()))


def test_compiling_a_tree_estimator_frees_the_called_booster_on_that_thread():
    import xgboost as xgb

    from models.scoring import TreeEstimator
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 5))
    y = (X[:, 0] + rng.normal(size=400) > 0).astype(int)
    booster = xgb.train({"max_depth": 3, "nthread": 1}, xgb.DMatrix(X, y), 20)
    expected = booster.inplace_predict(X.astype(np.float32), predict_type="margin")
    estimator = TreeEstimator(booster)
    freed = []
    _freed_on(booster, freed)
    del booster
    with ThreadPoolExecutor(1) as pool:  # compiled on a worker thread, as the service's reload does
        compiling = pool.submit(lambda: (estimator.compiled, threading.get_ident())[1]).result()
    assert freed == [compiling]  # the old code kept the called booster alive, to be freed anywhere
    np.testing.assert_allclose(estimator.margin(X), expected, rtol=0, atol=2e-5)
    kept = estimator.booster.inplace_predict(X.astype(np.float32), predict_type="margin")
    np.testing.assert_array_equal(kept, expected)  # the copy kept (for pickling, jobs) is the same model


@pytest.fixture()
def tracked_boosters(monkeypatch):
    """(thread that unpickled, thread that freed) of every booster a model load brings in."""
    from models.scoring import TreeEstimator
    events: list[dict] = []
    original = TreeEstimator.__setstate__

    def setstate(self, state):
        event = {"loaded": threading.get_ident(), "freed": []}
        _freed_on(state["booster"], event["freed"])
        events.append(event)
        original(self, state)

    monkeypatch.setattr(TreeEstimator, "__setstate__", setstate)
    return events


def test_reloads_on_different_threads_free_every_called_booster_where_it_was_called(serving_store, tracked_boosters):
    from models.store import configure_tracking
    from serving.holder import ModelHolder
    configure_tracking()
    holder = ModelHolder("models:/bip-employment@champion")
    pools = [ThreadPoolExecutor(1) for _ in range(3)]  # a reload lands on any thread of the pool
    served = []
    try:
        for i in range(4):
            ok, message = pools[i % len(pools)].submit(holder.load).result()
            assert ok, message
            served.append(weakref.ref(holder.current.model))
    finally:
        for pool in pools:
            pool.shutdown()
    gc.collect()
    assert len(tracked_boosters) >= 4 * 2  # heads x (estimator + fold estimators), per load
    # loaded, compiled by the smoke check and freed on the same thread, before the load returned
    assert all(event["freed"] == [event["loaded"]] for event in tracked_boosters), tracked_boosters
    assert [ref() is not None for ref in served] == [False, False, False, True]  # no old model kept alive


@pytest.mark.parametrize("given, expected", [(None, "2"), ("4", "4")])
def test_bip_serve_limits_malloc_arenas_unless_told_otherwise(given, expected):
    """Two arenas per server process unless MALLOC_ARENA_MAX says otherwise; the spawned workers
    inherit it (checked in a child process, so this test process keeps its own allocator)."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    if given is not None:
        env["MALLOC_ARENA_MAX"] = given
    code = ("import os, subprocess, sys; from serving.cli import limit_malloc_arenas; limit_malloc_arenas(); "
            "print(subprocess.run([sys.executable, '-c', 'import os; print(os.environ[\"MALLOC_ARENA_MAX\"])'], "
            "capture_output=True, text=True, check=True).stdout.strip())")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected
