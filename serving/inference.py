"""The Open Inference Protocol (KServe V2 REST) face of the champion: model metadata, and an
inference request of feature rows -> probabilities per horizon, through the model's own curve
(ScoringModel.curve_log_odds and curve_interval; no second copy of scoring).

Inputs, either form (docs/serving-load.md):
- one tensor named "features", shape [n, F], the F features in the model's column order (the
  metadata's parameters.feature_names), or
- one tensor per feature, named as the feature, shape [n] or [n, 1]; all F of them.
Datatype FP64, FP32 or FP16 (INT* and UINT* are taken as numbers too); data flat in row-major
order or nested; null is a missing value (the model handles missing measurements natively).

Outputs: "probability" [n, H] (the H horizons of parameters.horizons_months, non-decreasing
along a row), "interval_low" and "interval_high" [n, H] (95% model-uncertainty interval).

Errors are 400 with {"error": text} as the protocol says, plus the service's own "detail" and
"errors" (field, value, allowed); an unknown model name is 404.
"""

from __future__ import annotations

import math

import numpy as np

from models.scoring import ScoringModel, sigmoid
from serving.errors import safe_value

FEATURES = "features"
OUTPUTS = ("probability", "interval_low", "interval_high")
NUMERIC = {"FP64", "FP32", "FP16", "INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32", "UINT16", "UINT8"}


class InferenceError(Exception):
    """A V2 request the protocol or the model refuses: status and the problems found."""

    def __init__(self, status: int, problems: list[dict]):
        self.status, self.problems = status, problems
        super().__init__("; ".join(f"{p['field']}: {p['allowed']} (got {p['value']!r})" for p in problems))

    def body(self) -> dict:
        return {"error": str(self), "detail": str(self), "errors": self.problems}


def _problem(field: str, value, allowed: str) -> dict:
    return {"field": field, "value": safe_value(value), "allowed": allowed}


def metadata(name: str, version, model: ScoringModel) -> dict:
    """The model metadata response: the tensor form of the inputs, and the names in order."""
    F, H = len(model.spec.names), len(model.horizons)
    return {
        "name": name, "versions": [str(version)], "platform": f"bip-score/{model.kind}",
        "inputs": [{"name": FEATURES, "datatype": "FP64", "shape": [-1, F]}],
        "outputs": [{"name": output, "datatype": "FP64", "shape": [-1, H]} for output in OUTPUTS],
        "parameters": {"feature_names": list(model.spec.names), "horizons_months": model.horizons,
                       "default_horizon_months": model.horizon_months,
                       "per_feature_inputs": "also accepted: one input per feature, named as the feature, shape [n]"},
    }


def _flat(data, field: str) -> list:
    """Row-major flattening of nested lists (the protocol allows flat or nested data)."""
    if not isinstance(data, list):
        raise InferenceError(400, [_problem(field, data, "a JSON array of numbers (flat or nested)")])
    if data and isinstance(data[0], list):
        return [value for part in data for value in _flat(part, field)]
    return data


def _numbers(tensor: dict, field: str, count: int) -> np.ndarray:
    datatype = tensor.get("datatype")
    if datatype not in NUMERIC:
        raise InferenceError(400, [_problem(f"{field}.datatype", datatype, f"one of {sorted(NUMERIC)}")])
    values = _flat(tensor.get("data"), f"{field}.data")
    if len(values) != count:
        raise InferenceError(400, [_problem(f"{field}.data", f"{len(values)} values",
                                            f"{count} values (the product of shape {tensor.get('shape')})")])
    out = np.empty(count, dtype=np.float64)
    for i, value in enumerate(values):
        if value is None:
            out[i] = np.nan
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[i] = value
        else:
            raise InferenceError(400, [_problem(f"{field}.data[{i}]", value, "a finite number, or null for missing")])
    return out


def _shape(tensor: dict, field: str, allowed: list[list[int | None]], what: str) -> list[int]:
    shape = tensor.get("shape")
    ok = (isinstance(shape, list) and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)
          and any(len(shape) == len(form) and all(f is None or f == s for f, s in zip(form, shape)) for form in allowed))
    if not ok:
        raise InferenceError(400, [_problem(f"{field}.shape", shape, what)])
    return shape


def feature_rows(request: dict, model: ScoringModel, max_rows: int) -> np.ndarray:
    """The (n, F) feature matrix of a V2 inference request, in the model's column order."""
    names = model.spec.names
    F = len(names)
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or not inputs or not all(isinstance(t, dict) for t in inputs):
        raise InferenceError(400, [_problem("inputs", inputs, "a non-empty list of tensors {name, shape, datatype, data}")])
    if len(inputs) == 1 and inputs[0].get("name") == FEATURES:
        n, _ = _shape(inputs[0], "inputs[0]", [[None, F]], f"[n, {F}]: n rows of the {F} features in the model's order")
        _rows_allowed(n, max_rows)
        return _numbers(inputs[0], "inputs[0]", n * F).reshape(n, F)
    index = {name: k for k, name in enumerate(names)}
    problems = [_problem(f"inputs[{i}].name", t.get("name"),
                         f"'{FEATURES}' (alone, shape [n, {F}]) or a feature name of the model (GET /v2/models/{{name}})")
                for i, t in enumerate(inputs) if t.get("name") not in index]
    if problems:
        raise InferenceError(400, problems)
    seen = [t["name"] for t in inputs]
    repeated = sorted({name for name in seen if seen.count(name) > 1})
    missing = [name for name in names if name not in set(seen)]
    if repeated or missing:
        raise InferenceError(400, [_problem("inputs", f"repeated {repeated}" if repeated else
                                            f"{len(missing)} features missing, e.g. {missing[:5]}",
                                            f"each of the model's {F} features exactly once")])
    n = None
    X = None
    for i, tensor in enumerate(inputs):
        shape = _shape(tensor, f"inputs[{i}]", [[None], [None, 1]], "[n] or [n, 1]")
        if n is None:
            n = shape[0]
            _rows_allowed(n, max_rows)
            X = np.empty((n, F))
        elif shape[0] != n:
            raise InferenceError(400, [_problem(f"inputs[{i}].shape", shape, f"{n} rows, as inputs[0]")])
        X[:, index[tensor["name"]]] = _numbers(tensor, f"inputs[{i}]", n)
    return X


def _rows_allowed(n: int, max_rows: int) -> None:
    if n == 0:
        raise InferenceError(400, [_problem("inputs.shape", 0, "at least one row")])
    if n > max_rows:
        raise InferenceError(413, [_problem("inputs.shape", n, f"at most {max_rows} rows (BIP_MAX_COHORT_CITIZENS)")])


def requested_outputs(request: dict) -> list[str]:
    """The outputs asked for (all when none are named)."""
    wanted = request.get("outputs")
    if wanted is None:
        return list(OUTPUTS)
    if not isinstance(wanted, list) or not all(isinstance(o, dict) for o in wanted):
        raise InferenceError(400, [_problem("outputs", wanted, "a list of {name}")])
    problems = [_problem(f"outputs[{i}].name", o.get("name"), f"one of {list(OUTPUTS)}")
                for i, o in enumerate(wanted) if o.get("name") not in OUTPUTS]
    if problems:
        raise InferenceError(400, problems)
    return [o["name"] for o in wanted]


def infer(model: ScoringModel, X: np.ndarray, outputs: list[str]) -> dict[str, np.ndarray]:
    """Probabilities (n, H) per horizon on the model's curve, and its interval (n, H)."""
    curve = model.curve_log_odds(X)
    found = {"probability": sigmoid(curve)}
    if "interval_low" in outputs or "interval_high" in outputs:
        found["interval_low"], found["interval_high"] = model.curve_interval(X, curve)
    return {name: found[name] for name in outputs}


def response(name: str, version, request_id, results: dict[str, np.ndarray]) -> dict:
    """The inference response: each output as a flat row-major FP64 tensor."""
    out = {"model_name": name, "model_version": str(version),
           "outputs": [{"name": k, "datatype": "FP64", "shape": list(v.shape), "data": v.ravel().tolist()}
                       for k, v in results.items()]}
    if request_id is not None:
        out["id"] = str(request_id)
    return out
