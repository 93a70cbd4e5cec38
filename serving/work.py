"""The heavy work behind the cohort and evaluation routes, run as jobs (serving.jobs) or, for small
cohorts, inline. One function per job; the request worker only checks sizes and saves inputs."""

from __future__ import annotations

import io
import json
from datetime import date
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from bip.config import get_settings
from features.validation import find_problems
from models.batch import score_tables
from serving.errors import InputProblems, table_problems
from serving.uploads import read_tables, tables_from_json_lines

Progress = Callable[[float, str], None]
MEDIA_TYPES = {"json": "application/json", "csv": "text/csv; charset=utf-8",
               "parquet": "application/vnd.apache.parquet", "html": "text/html; charset=utf-8"}
CHUNKS = 10  # cohorts are scored in about this many slices of persons: progress and bounded memory


def _quiet(fraction: float, message: str) -> None:
    pass


def cohort_tables(inputs: dict[str, Path], schema, progress: Progress = _quiet,
                  file_format: dict | None = None) -> dict[str, pd.DataFrame]:
    """The checked upload (table files, or JSON lines in `body`) as validated contract tables;
    `file_format` (sep, encoding, date_format) as declared in the form."""
    progress(0.02, "reading the tables")
    if "body" in inputs:
        tables = tables_from_json_lines(inputs["body"].read_bytes(), schema)
    else:
        tables = read_tables(inputs, file_format)
    progress(0.1, "checking the tables against the data contract")
    problems = find_problems(tables, schema, pd.Timestamp(date.today()))
    if problems:
        raise InputProblems(table_problems(problems))
    return tables


def score_cohort(model, version: str | None, tables: dict[str, pd.DataFrame], at: str, explain: bool,
                 with_groups: bool, progress: Progress = _quiet) -> pd.DataFrame:
    """score_tables over slices of persons, so progress can be told and memory stays bounded."""
    persons = tables["persons"]["person_id"].drop_duplicates().to_numpy()
    slices = np.array_split(persons, min(CHUNKS, max(1, len(persons))))
    frames = []
    for i, ids in enumerate(slices):
        part = {name: table[table["person_id"].isin(ids)] for name, table in tables.items() if table is not None}
        frames.append(score_tables(model, part, at, explain, model_version=version, with_groups=with_groups))
        progress(0.15 + 0.8 * (i + 1) / len(slices), f"scored {sum(len(s) for s in slices[:i + 1])} of {len(persons)} citizens")
    frame = pd.concat(frames, ignore_index=True)
    return frame.sort_values(["person_id", "as_of"], kind="stable").reset_index(drop=True)


def render_scores(frame: pd.DataFrame, format: str, model: dict) -> bytes:
    """Scores as the answer body: JSON {model, count, scores}, CSV (formula-safe) or Parquet."""
    if format == "csv":
        from features.tables import write_csv
        buffer = io.StringIO()
        write_csv(frame, buffer)
        return buffer.getvalue().encode("utf-8")
    if format == "parquet":
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        return buffer.getvalue()
    records = json.loads(frame.to_json(orient="records", date_format="iso"))
    return json.dumps({"model": model, "count": len(records), "scores": records}).encode()


def run_job(job: dict, folder: Path, progress: Progress) -> tuple[str, str, str]:
    """Run one job in the job process; returns (result file name, media type, closing message)."""
    params = job["params"]
    inputs = {name: folder / "input" / file for name, file in params["inputs"].items()}
    if job["kind"] == "cohort_score":
        return _cohort_job(params, inputs, folder, progress)
    if job["kind"] == "evaluation":
        return _evaluation_job(params, inputs, folder, progress)
    raise ValueError(f"unknown job kind {job['kind']!r}")


def _score_on_dask(params, tables, folder, progress) -> pd.DataFrame:
    """The checked tables handed to the Dask cluster at BIP_DASK_ADDRESS (the job folder must be on
    storage the workers can read), scored there by the same score_tables."""
    from distributed import Client

    from features.build import add_group_columns
    from training.distributed import score_on_dask
    shared = folder / "tables"
    shared.mkdir(exist_ok=True)
    for name, table in tables.items():
        table.to_parquet(shared / f"{name}.parquet", index=False)
    progress(0.2, "scoring on the Dask cluster")
    with Client(get_settings().dask_address) as client:
        frame = score_on_dask(client, shared, params["model_uri"], params["at"], params["explain"],
                              model_version=params["model"]["version"])
    return add_group_columns(frame, tables["persons"]) if params["with_groups"] else frame


def _cohort_job(params, inputs, folder, progress):
    from models.store import configure_tracking, load_scoring_model
    configure_tracking()
    progress(0.01, f"loading model version {params['model']['version']}")
    model = load_scoring_model(params["model_uri"])
    tables = cohort_tables(inputs, model.schema, progress, params.get("file_format"))
    if get_settings().dask_address:
        frame = _score_on_dask(params, tables, folder, progress)
    else:
        frame = score_cohort(model, params["model"]["version"], tables, params["at"], params["explain"],
                             params["with_groups"], progress)
    name = f"scores.{params['format']}"
    (folder / name).write_bytes(render_scores(frame, params["format"], params["model"]))
    return name, MEDIA_TYPES[params["format"]], f"scored {len(frame)} occasions of {frame['person_id'].nunique()} citizens"


def _evaluation_job(params, inputs, folder, progress):
    """The same evaluate() as `bip evaluate`; written to the job folder and logged as an MLflow run
    in the evaluations experiment."""
    from evaluation.estimate import EvaluationInputError, read_cohort, write_outputs
    from evaluation.run import evaluate
    from evaluation.tracking import log_evaluation
    from features.schema import load_schema
    try:
        if params["mode"] == "bip":
            schema = load_schema()
            tables = cohort_tables(inputs, schema, progress, params.get("file_format"))
            model = None
            if params.get("model_uri"):
                from models.store import configure_tracking, load_scoring_model
                configure_tracking()
                model = load_scoring_model(params["model_uri"])
            result = evaluate(tables, kind=params["kind"], horizon=params["horizon"], estimand=params["estimand"],
                              seed=params["seed"], model=model, schema=schema, policy=params.get("policy"),
                              progress=lambda f, m: progress(0.15 + 0.75 * f, m))
        else:
            frame = read_cohort(inputs["cohort"], params.get("file_format"))
            result = evaluate(cohort=frame, treatment=params["treatment"], outcome=params["outcome"],
                              covariates=params["covariates"], subgroups=params["subgroups"],
                              design=params.get("design", "observational"), estimand=params["estimand"],
                              seed=params["seed"], progress=lambda f, m: progress(0.15 + 0.75 * f, m))
    except EvaluationInputError as error:
        raise InputProblems([error.to_dict()])
    progress(0.92, "writing the report and logging the run to MLflow")
    write_outputs(result, folder, language=params.get("language", "da"))
    run_id = log_evaluation(result)
    return "evaluation.json", MEDIA_TYPES["json"], f"evaluation done; MLflow run {run_id}"
