"""Share a trained run between machines (a teacher to the class) without sharing code.

An export is a zip of the lab's own description of the run (its validated config, the
input shape, class names and test figures), its metrics log, and the weights only. Import
rebuilds the architecture from the zoo or the layer list and then loads the weights, so a
tampered file can at worst hold wrong numbers: no pickle, no full Keras model, no Lambda
layer is ever loaded from it.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import shutil
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

import keras

from cnn_core.models import input_limits, zoo
from cnn_core.runs import run_config, run_folder, store
from cnn_core.runs import status as run_status

FORMAT = "cnn-lab-run"
VERSION = 1
META = "run.json"
WEIGHTS = "model.weights.h5"
METRICS = "metrics.jsonl"
MEMBERS = {META, WEIGHTS, METRICS}
SHARED_RUN_IS = (
    'a shared run is the .cnnlab.zip that "Share" downloads for a finished run on the Train '
    f"page, and it holds only {META}, {WEIGHTS} and {METRICS}"
)
MAX_BYTES = 200 * 1024 * 1024  # vgg_like_bn's weights are ~27 MB; leave room for larger stacks


class SharingError(Exception):
    """An export or import failed; the message says what to do."""


def export_run(run_id: str) -> bytes:
    """The zip that `import_run` reads, for a finished run.

    Raises:
        SharingError: the run has not finished or its model is missing.
    """
    status = run_status.read_status(run_id)
    paths = run_folder.run_paths(run_id)
    evaluation = store.read_evaluation(run_id) or {}
    if status.state != "finished" or not paths.model.is_file():
        raise SharingError(f"Run {run_id} is {status.state}: only a finished run can be shared.")
    model = keras.saving.load_model(paths.model, compile=False)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "config": store.read_config(run_id).to_dict(),
        "input_shape": list(model.input_shape[1:]),
        "class_names": evaluation.get("class_names"),
        "ink_on_dark": bool(evaluation.get("ink_on_dark", False)),
        "evaluation": evaluation,
        "seconds": status.seconds,
        "best_val_accuracy": status.best_val_accuracy,
    }
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / WEIGHTS
        model.save_weights(weights)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(META, json.dumps(meta, indent=2))
            z.write(weights, WEIGHTS)
            if paths.metrics.is_file():
                z.write(paths.metrics, METRICS)
    return buffer.getvalue()


def _read_members(data: bytes) -> dict[str, bytes]:
    if len(data) > MAX_BYTES:
        raise SharingError(
            f"The file is {len(data) / 2**20:,.0f} MB, over the {MAX_BYTES // 2**20} MB limit."
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise SharingError(
            f"This file is not a shared CNN Lab run (not a zip file): {SHARED_RUN_IS}."
        ) from exc
    with archive:
        names = {i.filename for i in archive.infolist()}
        if not {META, WEIGHTS} <= names or names - MEMBERS:
            # One sentence, not the file list: a zip of photos would fill the screen.
            count = f"{len(names):,} file{'s' if len(names) != 1 else ''}"
            raise SharingError(f"This zip ({count}) is not a shared CNN Lab run: {SHARED_RUN_IS}.")
        if sum(i.file_size for i in archive.infolist()) > MAX_BYTES:
            raise SharingError("The run unpacks to more than the size limit; it was not imported.")
        return {name: archive.read(name) for name in names}


def _parse_meta(
    raw: bytes,
) -> tuple[run_config.RunConfig, tuple[int, int, int], tuple[str, ...], dict]:
    try:
        meta = json.loads(raw)
        if meta.get("format") != FORMAT or meta.get("version") != VERSION:
            raise SharingError(f"{META} is not a CNN Lab run description of version {VERSION}.")
        cfg = run_config.RunConfig.from_dict(meta["config"])
        shape = tuple(int(v) for v in meta["input_shape"])
        names = tuple(str(c) for c in meta["class_names"])
    except SharingError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SharingError(f"{META} is damaged or incomplete ({exc}).") from exc
    if len(shape) != 3 or len(names) < 2:
        raise SharingError(f"{META} gives an impossible input shape {shape} or class list.")
    return cfg, shape, names, meta


def _metrics_lines(raw: bytes | None) -> bytes:
    """Keep only well-formed JSON objects: the log is shown, never executed, but a page
    should not choke on it."""
    kept = []
    for line in (raw or b"").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and all(
            not isinstance(v, float) or math.isfinite(v) for v in record.values()
        ):
            kept.append(json.dumps(record))
    return ("\n".join(kept) + "\n").encode() if kept else b""


def _save_problem(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.errno in store.FULL_DISK_ERRNOS:
        return (
            f"There is no room to save the run in {run_folder.runs_home()} ({exc.strerror}), so it "
            "was not imported. Delete old runs or free space on that disk, then import it again."
        )
    return f"The run could not be saved ({type(exc).__name__}: {exc}), so it was not imported."


def import_run(data: bytes) -> str:
    """Rebuild a shared run on this machine as a finished run.

    Args:
        data: the bytes of a zip written by `export_run`.

    Returns:
        The new run id.

    Raises:
        SharingError: the file is not a CNN Lab run, names an unknown model or an
            impossible layer list, or its weights do not fit the architecture, or saving
            the run failed (a full disk); nothing is left behind then.
        RunError: the runs folder is unwritable or full.
    """
    members = _read_members(data)
    cfg, shape, names, meta = _parse_meta(members[META])
    try:
        model = zoo.build_model(cfg.model, shape, len(names), cfg.layers)
    except input_limits.ModelError as exc:
        raise SharingError(f"The shared run's model cannot be built here: {exc}") from exc
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / WEIGHTS
        try:
            weights.write_bytes(members[WEIGHTS])
        except OSError as exc:  # Keras reads weights from a file only
            raise SharingError(
                f"The weights could not be unpacked into {tmp} ({exc.strerror or exc}), so the "
                "run was not imported. Free space on that disk, then import it again."
            ) from exc
        try:
            with warnings.catch_warnings():
                # Keras only warns when it skips weights it cannot place; here that means
                # the file belongs to another architecture, so it must fail, not half-load.
                warnings.simplefilter("error", UserWarning)
                model.load_weights(weights)
        except (OSError, ValueError, UserWarning) as exc:
            raise SharingError(
                f"The weights do not fit the {cfg.model} architecture ({exc})."
            ) from exc
    evaluation = {
        k: v
        for k, v in (meta.get("evaluation") or {}).items()
        if isinstance(v, (int, float, str, list, bool))
    }
    evaluation.update(
        input_shape=list(shape), class_names=list(names), ink_on_dark=bool(meta.get("ink_on_dark"))
    )
    best = meta.get("best_val_accuracy")
    # The version recorded names the exporting machine's images, which this one never had:
    # here the run is evaluated on whatever its dataset's name holds (or says it is missing).
    cfg = dataclasses.replace(cfg, dataset_fingerprint=None)
    run_id = store.create_run(cfg)
    paths = run_folder.run_paths(run_id)
    try:
        model.save(paths.model)
        paths.metrics.write_bytes(_metrics_lines(members.get(METRICS)))
        run_folder.write_json_atomic(paths.evaluation, evaluation)
        seconds = float(meta.get("seconds") or 0.0)
        run_status.update_status(
            run_id, state="finished", message="Imported from a shared file.", finished=time.time(),
            params=model.count_params(), epochs=cfg.epochs, seconds=seconds,
            best_val_accuracy=best if isinstance(best, float) else None,
        )  # fmt: skip
    except Exception as exc:
        # All or nothing: a half-imported run would be listed, and would keep holding the space.
        shutil.rmtree(paths.root, ignore_errors=True)
        raise SharingError(_save_problem(exc)) from exc
    return run_id
