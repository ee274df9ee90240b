"""MLflow: a run per dlx run in a local SQLite tracking store (default `<out>/mlflow.db`, artifacts in
`<out>/mlartifacts`), never a network service unless `logger.mlflow.tracking_uri` points at one. A sweep
is a parent run and each child a nested run (tag `mlflow.parentRunId`), tagged with its grid values, so
MLflow's own comparison views work. Uses the client API, not the process-global fluent one, so pool
workers and SLURM jobs each talk to the store on their own."""

from __future__ import annotations

import numbers
import os
from pathlib import Path

PARENT_ENV = "DLX_MLFLOW_PARENT_RUN"


def store(run, cfg) -> tuple[str, str]:
    """(tracking URI, artifact root): the configured ones, or SQLite and a folder beside the output root."""
    top = Path(run.dir).resolve()
    while top.parent.name == "runs":  # a sweep child: <out>/<command>/<sweep>/runs/<id>
        top = top.parent.parent
    out = top.parents[1]  # <out>/<command>/<name>
    uri = cfg.get("tracking_uri") or f"sqlite:///{(out / 'mlflow.db').resolve()}"
    artifacts = cfg.get("artifact_location") or (out / "mlartifacts").resolve().as_uri()
    return str(uri), str(artifacts)


def probe(uri: str) -> None:
    """Check the store once, quickly, before MLflow's own client would retry for minutes: a SQLite file
    that cannot be opened for writing raises at once; a server gets few, short retries."""
    if uri.startswith("sqlite:///"):
        import sqlite3

        path = uri[len("sqlite:///"):]
        try:
            con = sqlite3.connect(path, timeout=5)
            try:
                con.execute("CREATE TABLE IF NOT EXISTS dlx_probe (x INTEGER)")
                con.execute("DROP TABLE dlx_probe")
            finally:
                con.close()
        except sqlite3.Error as err:
            raise OSError(f"cannot write the MLflow store {path} ({err})") from None
    elif uri.startswith(("http://", "https://")):  # unless the user chose otherwise: fail in seconds
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


class MLflow:
    name = "mlflow"

    def __init__(self, run, cfg, parent: str | None = None):
        import logging

        from mlflow.tracking import MlflowClient

        logging.getLogger("mlflow").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)
        uri, artifacts = store(run, cfg)
        probe(uri)
        self.client = MlflowClient(tracking_uri=uri)
        parent = parent or os.environ.get(PARENT_ENV)  # "<experiment id>/<run id>" of the sweep
        if parent:  # nested runs live in their parent's experiment
            exp_id, parent_id = parent.split("/", 1)
        else:
            name = str(cfg.get("experiment") or f"dlx/{run.kind}")
            exp = self.client.get_experiment_by_name(name)
            exp_id = exp.experiment_id if exp else \
                self.client.create_experiment(name, artifact_location=artifacts)
        tags = {"dlx.kind": run.kind, "dlx.run_dir": str(Path(run.dir).resolve())}
        if parent:
            tags["mlflow.parentRunId"] = parent_id
        self.experiment_id = exp_id
        self.run_id = self.client.create_run(exp_id, run_name=Path(run.dir).name, tags=tags).info.run_id

    def params(self, flat: dict) -> None:
        from mlflow.entities import Param

        params = [Param(k[:250], str(v)[:6000]) for k, v in flat.items()]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=params[i:i + 100])

    def tag(self, key: str, value) -> None:
        self.client.set_tag(self.run_id, key, str(value)[:5000])

    def metrics(self, row: dict, step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        ms = [Metric(k, float(v), now, int(step)) for k, v in row.items()
              if isinstance(v, numbers.Real) and not isinstance(v, bool) and v == v and k not in ("step",)]
        if ms:
            self.client.log_batch(self.run_id, metrics=ms)

    def finish(self, summary: dict, figures: list) -> None:
        m = {f"final.{k}": v for k, v in (summary.get("metrics") or {}).items()}
        self.metrics(m, 0)
        for c in summary.get("claims") or []:
            self.tag(f"claim.{c['id']}", c["verdict"])
        for key in ("axes", "params"):
            if summary.get(key) is not None:
                self.tag(f"dlx.{key}", summary[key])
        for png in figures:
            self.client.log_artifact(self.run_id, str(png), artifact_path="figures")
        status = {"completed": "FINISHED", "diverged": "FINISHED", "interrupted": "KILLED"}.get(
            summary.get("status"), "FAILED")
        self.tag("dlx.status", summary.get("status"))
        self.client.set_terminated(self.run_id, status)
