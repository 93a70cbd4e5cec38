"""Exact TreeSHAP and prediction over an XGBoost booster's arrays, compiled with numba.

XGBoost's own `pred_contribs` needs a DMatrix and costs ~0.3 ms for one row of our model. This
computes the same values (Lundberg, Erion & Lee 2018, path-dependent TreeSHAP with node covers)
without recursion: for every leaf, the distinct features on its path carry a cover fraction
(fixed per leaf) and a one-fraction (does x follow the path there, 0 or 1). The leaf's SHAP
values depend only on which of its (at most depth) features x follows, so they are tabulated
for all 2**depth patterns when the model loads (extend the path feature by feature, take the
unwound sums: the weights are symmetric in path order); a row then costs one pass over the
nodes and one table lookup per leaf. Values equal pred_contribs (tested on thousands of
rows); margins are summed in float64, so base + sum(contributions) equals the margin to ~1e-12.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# path element columns: feature, zero fraction, one fraction, weight
_D, _Z, _O, _W = 0, 1, 2, 3


class CompiledTrees:
    """A booster flattened into arrays: one row per node, trees concatenated."""

    def __init__(self, booster):
        import json
        model = json.loads(booster.save_raw("json"))["learner"]
        trees = model["gradient_booster"]["model"]["trees"]
        left, right, default, feature, threshold, value, cover, roots = [], [], [], [], [], [], [], []
        offset = 0
        for tree in trees:
            l, r = np.asarray(tree["left_children"], dtype=np.int64), np.asarray(tree["right_children"], dtype=np.int64)
            leaf = l < 0
            roots.append(offset)
            left.append(np.where(leaf, -1, l + offset))
            right.append(np.where(leaf, -1, r + offset))
            default.append(np.where(leaf, -1, np.where(np.asarray(tree["default_left"], dtype=bool), l, r) + offset))
            feature.append(np.where(leaf, -1, np.asarray(tree["split_indices"], dtype=np.int64)))
            conditions = np.asarray(tree["split_conditions"], dtype=np.float64)
            threshold.append(np.where(leaf, 0.0, conditions).astype(np.float32))
            value.append(np.where(leaf, conditions, 0.0))   # a leaf's split_condition holds its value
            cover.append(np.asarray(tree["sum_hessian"], dtype=np.float64))
            offset += len(l)
        self.left, self.right, self.default = np.concatenate(left), np.concatenate(right), np.concatenate(default)
        self.feature, self.threshold = np.concatenate(feature), np.concatenate(threshold)
        self.value, self.cover = np.concatenate(value), np.concatenate(cover)
        self.roots = np.asarray(roots, dtype=np.int64)
        self.n_features = int(model["learner_model_param"]["num_feature"])
        n_features = self.n_features
        self.max_depth = int(_depth(self.left, self.right, self.roots))
        if self.max_depth > 10:  # the per-leaf tables grow as 2**depth
            raise ValueError(f"trees of depth {self.max_depth}: compiled TreeSHAP supports depth <= 10")
        self._leaf_paths()
        self.bias = float(sum(_expected(root, self.left, self.right, self.value, self.cover) for root in self.roots))
        # the constant XGBoost adds to every margin (base_score on the margin scale)
        probe = np.zeros((1, n_features), dtype=np.float32)
        self.base_margin = float(booster.inplace_predict(probe, predict_type="margin")[0]
                                 - _margins(probe, self.left, self.right, self.default, self.feature,
                                            self.threshold, self.value, self.roots)[0])

    def _leaf_paths(self):
        """For every leaf: the distinct features on its path with their cover fraction (products
        when a feature repeats), and each step's node, the child towards the leaf and its slot."""
        D = max(self.max_depth, 1)
        leaves = np.nonzero(self.left < 0)[0]
        self.leaf_node = leaves.astype(np.int64)
        self.leaf_len = np.zeros(len(leaves), dtype=np.int64)
        self.leaf_feature = np.zeros((len(leaves), D), dtype=np.int64)
        self.leaf_zero = np.ones((len(leaves), D))
        self.leaf_nsteps = np.zeros(len(leaves), dtype=np.int64)
        self.step_node = np.zeros((len(leaves), D), dtype=np.int64)
        self.step_child = np.zeros((len(leaves), D), dtype=np.int64)
        self.step_slot = np.zeros((len(leaves), D), dtype=np.int64)
        parent = {}
        for node in range(len(self.left)):
            if self.left[node] >= 0:
                parent[int(self.left[node])] = node
                parent[int(self.right[node])] = node
        for i, leaf in enumerate(leaves):
            steps, node = [], int(leaf)
            while node in parent:
                steps.append((parent[node], node))
                node = parent[node]
            steps.reverse()
            slots: dict[int, int] = {}
            for s_index, (at, towards) in enumerate(steps):
                f = int(self.feature[at])
                slot = slots.setdefault(f, len(slots))
                self.leaf_feature[i, slot] = f
                self.leaf_zero[i, slot] *= self.cover[towards] / self.cover[at]
                self.step_node[i, s_index], self.step_child[i, s_index], self.step_slot[i, s_index] = at, towards, slot
            self.leaf_len[i], self.leaf_nsteps[i] = len(slots), len(steps)
        self.table = _leaf_tables(self.leaf_node, self.leaf_len, self.leaf_zero, self.value, D)

    def margin(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)
        return self.base_margin + _margins(X, self.left, self.right, self.default, self.feature,
                                           self.threshold, self.value, self.roots)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """(n, F+1): exact SHAP values per feature, the bias (expected margin) last."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        phi = _shap(X, self.left, self.right, self.default, self.feature, self.threshold, self.bias, self.leaf_len,
                    self.leaf_feature, self.leaf_nsteps, self.step_node, self.step_child, self.step_slot, self.table,
                    self.n_features)
        phi[:, -1] += self.base_margin
        return phi


class CompiledForest:
    """Several compiled boosters walked in one call: `margins(X)` is (n, models), column m equal
    to models[m].margin(X) bit for bit (each model's trees summed in the same order from 0.0,
    then its base margin added). A scoring model's heads and cross-validation models are 24
    boosters; one call instead of 24 saves the per-call cost, which for small trees is most of it."""

    def __init__(self, models: list[CompiledTrees]):
        offsets = np.cumsum([0] + [len(m.left) for m in models[:-1]])
        shift = lambda a, o: np.where(a >= 0, a + o, -1)  # noqa: E731  child indices into the joined arrays
        self.left = np.concatenate([shift(m.left, o) for m, o in zip(models, offsets)])
        self.right = np.concatenate([shift(m.right, o) for m, o in zip(models, offsets)])
        self.default = np.concatenate([shift(m.default, o) for m, o in zip(models, offsets)])
        self.feature = np.concatenate([m.feature for m in models])
        self.threshold = np.concatenate([m.threshold for m in models])
        self.value = np.concatenate([m.value for m in models])
        self.roots = np.concatenate([m.roots + o for m, o in zip(models, offsets)])
        self.root_model = np.concatenate([np.full(len(m.roots), i, dtype=np.int64) for i, m in enumerate(models)])
        self.base_margin = np.array([m.base_margin for m in models])
        self.n_models = len(models)

    def margins(self, X: np.ndarray) -> np.ndarray:
        """(n, models): each model's margin for each row of X."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        return self.base_margin + _forest_margins(X, self.left, self.right, self.default, self.feature,
                                                  self.threshold, self.value, self.roots, self.root_model,
                                                  self.n_models)


def _depth(left, right, roots) -> int:
    deepest = 0
    for root in roots:
        stack = [(int(root), 0)]
        while stack:
            node, depth = stack.pop()
            deepest = max(deepest, depth)
            if left[node] >= 0:
                stack += [(int(left[node]), depth + 1), (int(right[node]), depth + 1)]
    return deepest


# The split decision is written out in each kernel: through a helper taking the arrays (per node,
# or with the row X[r] as an earlier version did), numba's call cost ~10x the whole walk, even
# with inline="always".
@njit(cache=True)
def _leaf(X, r, node, left, right, default, feature, threshold):
    """The leaf row r of X reaches from `node` (NaN takes the default branch)."""
    while left[node] >= 0:
        value = X[r, feature[node]]
        if np.isnan(value):
            node = default[node]
        elif value < threshold[node]:
            node = left[node]
        else:
            node = right[node]
    return node


@njit(cache=True)
def _margins(X, left, right, default, feature, threshold, value, roots):
    out = np.zeros(X.shape[0])
    for r in range(X.shape[0]):
        total = 0.0
        for root in roots:
            total += value[_leaf(X, r, root, left, right, default, feature, threshold)]
        out[r] = total
    return out


@njit(cache=True)
def _forest_margins(X, left, right, default, feature, threshold, value, roots, root_model, n_models):
    out = np.zeros((X.shape[0], n_models))
    for r in range(X.shape[0]):
        for t in range(roots.shape[0]):
            out[r, root_model[t]] += value[_leaf(X, r, roots[t], left, right, default, feature, threshold)]
    return out


@njit(cache=True)
def _extend(path, depth, zero, one, feature):
    path[depth, _D] = feature
    path[depth, _Z] = zero
    path[depth, _O] = one
    path[depth, _W] = 1.0 if depth == 0 else 0.0
    for i in range(depth - 1, -1, -1):
        path[i + 1, _W] += one * path[i, _W] * (i + 1) / (depth + 1)
        path[i, _W] = zero * path[i, _W] * (depth - i) / (depth + 1)


@njit(cache=True)
def _unwound_sum(path, depth, index):
    one, zero = path[index, _O], path[index, _Z]
    n = path[depth, _W]
    total = 0.0
    for j in range(depth - 1, -1, -1):
        if one != 0.0:
            t = n * (depth + 1) / ((j + 1) * one)
            total += t
            n = path[j, _W] - t * zero * (depth - j) / (depth + 1)
        else:
            total += (path[j, _W] / zero) / ((depth - j) / (depth + 1))
    return total


def _expected(node, left, right, value, cover) -> float:
    """Cover-weighted mean of a subtree's leaves: the tree's output when no feature is known."""
    if left[node] < 0:
        return float(value[node])
    return (cover[left[node]] * _expected(left[node], left, right, value, cover)
            + cover[right[node]] * _expected(right[node], left, right, value, cover)) / cover[node]


@njit(cache=True)
def _leaf_tables(leaf_node, leaf_len, leaf_zero, value, max_len):
    """table[leaf, pattern, slot]: the SHAP value the leaf gives its slot's feature when the
    features whose bit is set in `pattern` send x along the leaf's path (one-fraction 1) and the
    others do not (0). A path has at most max_len distinct features, so 2**max_len patterns."""
    table = np.zeros((leaf_node.shape[0], 1 << max_len, max_len))
    path = np.zeros((max_len + 2, 4))
    for leaf in range(leaf_node.shape[0]):
        depth = leaf_len[leaf]
        v = value[leaf_node[leaf]]
        for pattern in range(1 << depth):
            _extend(path, 0, 1.0, 1.0, -1)
            for slot in range(depth):
                _extend(path, slot + 1, leaf_zero[leaf, slot], float((pattern >> slot) & 1), slot)
            for i in range(1, depth + 1):
                w = _unwound_sum(path, depth, i)
                table[leaf, pattern, int(path[i, _D])] = w * (path[i, _O] - path[i, _Z]) * v
    return table


@njit(cache=True)
def _shap(X, left, right, default, feature, threshold, bias, leaf_len, leaf_feature, leaf_nsteps,
          step_node, step_child, step_slot, table, n_features):
    """Per row: the child each node sends x to; per leaf, the pattern of path features x follows,
    and the precomputed SHAP values for that pattern."""
    n_nodes = left.shape[0]
    phi = np.zeros((X.shape[0], n_features + 1))
    chosen = np.empty(n_nodes, dtype=np.int64)
    for r in range(X.shape[0]):
        for node in range(n_nodes):
            if left[node] >= 0:
                value = X[r, feature[node]]
                if np.isnan(value):
                    chosen[node] = default[node]
                elif value < threshold[node]:
                    chosen[node] = left[node]
                else:
                    chosen[node] = right[node]
        for leaf in range(leaf_len.shape[0]):
            pattern = (1 << leaf_len[leaf]) - 1
            for step in range(leaf_nsteps[leaf]):
                if chosen[step_node[leaf, step]] != step_child[leaf, step]:
                    pattern &= ~(1 << step_slot[leaf, step])
            for slot in range(leaf_len[leaf]):
                phi[r, leaf_feature[leaf, slot]] += table[leaf, pattern, slot]
        phi[r, n_features] = bias
    return phi
