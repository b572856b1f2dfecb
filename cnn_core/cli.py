"""The command line: ``python -m cnn_core COMMAND``, the same code paths as the app.

    python -m cnn_core train --dataset mnist --model simple_convnet --epochs 3 --wait
    python -m cnn_core train --preset mnist-99 --wait
    python -m cnn_core runs
    python -m cnn_core show RUN_ID
    python -m cnn_core stop RUN_ID
    python -m cnn_core resume RUN_ID --wait
    python -m cnn_core rename RUN_ID "a name that tells it apart"
    python -m cnn_core delete RUN_ID
    python -m cnn_core datasets
    python -m cnn_core datasets delete flowers
    python -m cnn_core download fashion_mnist
    python -m cnn_core models --json
    python -m cnn_core evaluate RUN_ID --images my_digits/ --json

User errors print one line on stderr and exit with code 1, never a traceback.
TensorFlow is imported only by commands that need it (train validates with the model zoo,
worker trains), so listing runs or datasets is quick.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import TextIO

from cnn_core.runs import jobs, metrics_log, run_config, run_folder, store
from cnn_core.runs import status as run_status

FOLLOW_POLL_S = 0.5
PRECISIONS = {"auto": None, "float32": False, "bfloat16": True}  # --precision -> mixed_precision
EXIT_OK, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 130


class CliError(Exception):
    """A user error: printed as one line, exit code 1."""


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def _epoch_line(rec: dict) -> str:
    partial = " (partial)" if rec.get("partial") else ""
    return (
        f"epoch {rec['epoch']}{partial}: loss {_fmt(rec.get('loss'))} "
        f"acc {_fmt(rec.get('accuracy'))} val_loss {_fmt(rec.get('val_loss'))} "
        f"val_acc {_fmt(rec.get('val_accuracy'))} {_fmt(rec.get('images_per_s'), '.0f')} img/s "
        f"{_fmt(rec.get('seconds'), '.1f')} s"
    )


def follow(run_id: str, out: TextIO | None = None) -> int:
    """Prints a run's epoch lines until it ends; returns 0 when it finished or stopped."""
    out = out or sys.stdout
    reader = metrics_log.MetricsReader(run_id)
    while True:
        status = run_status.read_status(run_id)
        for rec in metrics_log.epoch_records(reader.read_new(status.history_rewrites)):
            print(_epoch_line(rec), file=out, flush=True)
        if not status.active:
            break
        time.sleep(FOLLOW_POLL_S)
    evaluation = store.read_evaluation(run_id) if status.state == "finished" else None
    if evaluation:
        print(f"test: loss {_fmt(evaluation.get('loss'))} "
              f"accuracy {_fmt(evaluation.get('accuracy'))}", file=out)  # fmt: skip
    print(f"{status.state}: {status.message}", file=out, flush=True)
    return EXIT_OK if status.state in ("finished", "stopped") else EXIT_ERROR


def _layers(text: str | None) -> list | None:
    if text is None:
        return None
    try:
        if text.startswith("@"):
            with open(text[1:]) as f:
                return json.load(f)
        return json.loads(text)
    except (OSError, ValueError) as exc:
        raise CliError(f"--layers must be a JSON list or @file.json ({exc}).") from exc


def _base_configs(args: argparse.Namespace) -> list[run_config.RunConfig]:
    """The configs the options change: a preset's, a --config file's, or the defaults."""
    if args.preset:
        from cnn_core.runs import presets

        try:
            return list(presets.get_preset(args.preset).configs)
        except KeyError as exc:
            raise CliError(exc.args[0]) from exc
    if args.config:
        try:
            with open(args.config) as f:
                return [run_config.RunConfig.from_dict(json.load(f))]
        except (OSError, ValueError) as exc:
            raise CliError(f"Cannot read {args.config}: {exc}") from exc
    return [run_config.RunConfig()]


def cmd_train(args: argparse.Namespace) -> int:
    options = {
        "name": args.name, "dataset": args.dataset, "dataset_source": args.source,
        "model": args.model, "layers": _layers(args.layers), "optimizer": args.optimizer,
        "learning_rate": args.lr, "momentum": args.momentum, "batch_size": args.batch_size,
        "epochs": args.epochs, "validation_split": args.validation_split,
        "lr_schedule": args.lr_schedule, "augment_shift": args.augment_shift,
        "augment_rotate": args.augment_rotate, "augment_zoom": args.augment_zoom,
        "augment_flip": args.augment_flip or None, "label_smoothing": args.label_smoothing,
        "seed": args.seed,
        "mixed_precision": PRECISIONS[args.precision],
    }  # fmt: skip
    changes = {k: v for k, v in options.items() if v is not None}
    if "dataset" in changes and "dataset_source" not in changes:
        changes["dataset_source"] = None  # a preset's source belongs to its own dataset
    configs = [
        run_config.RunConfig.from_dict({**base.to_dict(), **changes})
        for base in _base_configs(args)
    ]
    run_ids = jobs.start_runs(configs)  # as the Train page starts a preset: all or none
    for run_id in run_ids:
        print(run_id, flush=True)
    if not args.wait:
        return EXIT_OK
    codes = [follow(run_id) for run_id in run_ids]  # they queue in this order
    return max(codes)


def cmd_resume(args: argparse.Namespace) -> int:
    jobs.resume_run(args.run_id)
    print(args.run_id, flush=True)
    return follow(args.run_id) if args.wait else EXIT_OK


def cmd_stop(args: argparse.Namespace) -> int:
    status = jobs.stop_run(args.run_id)
    print(f"{args.run_id}: {status.state}")
    return EXIT_OK


RUNS_COLUMNS = ("state", "epochs", "best val. accuracy", "test accuracy", "name")


def cmd_runs(args: argparse.Namespace) -> int:
    from cnn_core.runs import runboard  # the same reading of the runs as the Train page's table

    rows = [("RUN", *(c.upper() for c in RUNS_COLUMNS))]
    for r in runboard.board():
        record = runboard.table_record(r)
        rows.append((r.id, *(record[c] for c in RUNS_COLUMNS)))
    if len(rows) == 1:
        print(f"No runs yet in {run_folder.runs_home()}.")
        return EXIT_OK
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return EXIT_OK


def cmd_rename(args: argparse.Namespace) -> int:
    print(f"{args.run_id}: {store.rename_run(args.run_id, args.name)}")
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    name = store.run_name(args.run_id)
    store.delete_run(args.run_id)
    print(f"deleted {args.run_id} ({name})")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    cfg, status = store.read_config(args.run_id), run_status.read_status(args.run_id)
    print(f"run {args.run_id}: {store.run_name(args.run_id)}")
    print(f"state: {status.state}: {status.message}")
    print("config: " + json.dumps(cfg.to_dict()))
    records, _ = metrics_log.read_metrics(args.run_id)
    for rec in metrics_log.epoch_records(records):
        print("  " + _epoch_line(rec))
    evaluation = store.read_evaluation(args.run_id)
    if evaluation:
        print(f"test: loss {_fmt(evaluation.get('loss'))} "
              f"accuracy {_fmt(evaluation.get('accuracy'))}")  # fmt: skip
    return EXIT_OK


def cmd_datasets(args: argparse.Namespace) -> int:
    from cnn_core.data import datasets

    if args.action == "delete":
        return _delete_dataset(args.name)
    for name in datasets.list_datasets():
        print(f"{name}: {datasets.dataset_title(name)}")
        for s in datasets.dataset_status(name):
            mark = "ready  " if s.available else "missing"
            print(f"  [{mark}] {s.source}: {s.description} ({s.detail})")
    return EXIT_OK


def _delete_dataset(name: str | None) -> int:
    from cnn_core.data import datasets, userdata
    from cnn_core.data.dataset import USER_PREFIX
    from cnn_core.runs import dataset_use

    if not name:
        raise CliError("Name the dataset to delete: python -m cnn_core datasets delete NAME.")
    title = datasets.dataset_title(USER_PREFIX + userdata.user_slug(name))
    used = dataset_use.delete_dataset(name)
    print(f"Deleted {title}.")
    if used:
        print(f"Runs that trained on it (their evaluation now says it is gone): {', '.join(used)}")
    return EXIT_OK


def cmd_download(args: argparse.Namespace) -> int:
    from cnn_core.data import datasets

    def progress(done: int, total: int | None) -> None:
        of = f" of {total / 2**20:.1f}" if total else ""
        print(f"\r{done / 2**20:.1f}{of} MB", end="", file=sys.stderr, flush=True)

    path = datasets.download_dataset(args.dataset, progress)
    print(file=sys.stderr)
    print(f"{args.dataset}: downloaded to {path}")
    return EXIT_OK


MODELS_COLUMNS = ("KEY", "DATASET", "INPUT", "TEST ACCURACY", "SHIPPED", "CLASSES")


def _model_record(m) -> dict:
    return {
        "key": m.key,
        "label": m.label,
        "dataset": m.dataset,
        "class_names": list(m.class_names),
        "input_shape": list(m.input_shape),
        "test_accuracy": m.test_accuracy,
        "shipped": m.shipped,
        "description": m.description,
    }


def cmd_models(args: argparse.Namespace) -> int:
    from cnn_core import catalog

    found = catalog.list_trained()
    if args.json:
        print(json.dumps([_model_record(m) for m in found], indent=2))
        return EXIT_OK
    rows = [MODELS_COLUMNS]
    for m in found:
        shape = "×".join(str(side) for side in m.input_shape)
        rows.append((m.key, m.dataset, shape, _fmt(m.test_accuracy),
                     "yes" if m.shipped else "no", ", ".join(m.class_names)))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return EXIT_OK


def _find_model(name: str):
    """The trained model named by a catalog key, a run id or a shipped model's name."""
    from cnn_core import catalog

    found = catalog.list_trained()
    for m in found:
        if name in (m.key, m.key.removeprefix(catalog.RUN_PREFIX),
                    m.key.removeprefix(catalog.PRETRAINED_PREFIX)):  # fmt: skip
            return m
    known = ", ".join(m.key for m in found) or "none yet"
    raise CliError(
        f"No trained model {name!r}. Trained models (python -m cnn_core models): {known}."
    )


def _folder_images(folder: str, model) -> tuple:
    """The images of DIR, one sub-folder per class named as the model's classes, as the
    model's inputs with labels in the model's class order."""
    from pathlib import Path

    import numpy as np

    from cnn_core.data import owndata

    root = Path(folder)
    if not root.is_dir():
        raise CliError(f"{folder}: no such folder.")
    height, width, channels = model.input_shape
    if height != width:
        raise CliError(f"{model.key} takes {height}×{width} images: a folder is read as squares.")
    x, labels, names, report = owndata.read_image_folder(
        root, image_size=height, grayscale=channels == 1
    )
    by_folder = _class_folders(model.class_names)
    unknown = [n for n in names if n not in by_folder]
    if unknown:
        classes = ", ".join(_folder_name(c) for c in model.class_names)
        raise CliError(
            f"{folder}: the folder {unknown[0]!r} is not a class of {model.key}; "
            f"name each folder after one of its classes: {classes}."
        )
    to_model = np.asarray([by_folder[n] for n in names], dtype=np.int64)
    return x, to_model[labels], report


def _folder_name(class_name: str) -> str:
    """The folder a class's images go in: a folder name cannot hold "/" (T-shirt/top)."""
    return class_name.replace("/", "_")


def _class_folders(class_names) -> dict[str, int]:
    """Each folder name that means a class (its own name, or with "/" as "_" or "-")."""
    found = {}
    for i, name in enumerate(class_names):
        for alias in (name, _folder_name(name), name.replace("/", "-")):
            found.setdefault(alias, i)
    return found


def cmd_evaluate(args: argparse.Namespace) -> int:
    from cnn_core import catalog
    from cnn_core.data import versions
    from cnn_core.data.dataset import DatasetError
    from cnn_core.explain import evaluation, inference

    model = _find_model(args.model)
    try:
        if args.images:
            x, y, _ = _folder_images(args.images, model)
            where, title = args.images, args.images
        else:
            name = args.dataset or model.dataset
            fingerprint = model.dataset_fingerprint if name == model.dataset else None
            ds = versions.load_dataset_version(name, fingerprint)
            if tuple(ds.input_shape) != tuple(model.input_shape) or len(ds.class_names) != len(
                model.class_names
            ):
                raise CliError(
                    f"{model.key} takes {len(model.class_names)} classes of "
                    f"{'×'.join(map(str, model.input_shape))} images; {ds.title} has "
                    f"{len(ds.class_names)} of {'×'.join(map(str, ds.input_shape))}."
                )
            x, y, where, title = ds.x_test, ds.y_test, name, f"the test split of {ds.title}"
        keras_model = catalog.load_trained(model.key)
    except (DatasetError, catalog.TrainedModelError) as exc:
        raise CliError(str(exc)) from exc
    predictor = inference.Predictor(keras_model, average_flips=model.average_flips)
    probs = inference.predict_in_batches(predictor, x)
    ev = evaluation.evaluate_predictions(y, probs, model.class_names)
    if args.json:
        per_class = {
            r["class"]: {k: r[k] for k in ("precision", "recall", "f1", "support")}
            for r in ev.report
        }
        print(json.dumps({"model": model.key, "dataset": where, "images": ev.count,
                          "accuracy": ev.accuracy, "per_class": per_class}, indent=2))  # fmt: skip
        return EXIT_OK
    print(f"{model.label} ({model.key}) on {title}: {ev.count:,} images")
    print(f"test accuracy: {ev.accuracy:.4f}  loss: {ev.loss:.4f}")
    print(_report_text(ev))
    print("confusion matrix (rows: true class, columns: predicted class):")
    print(_matrix_text(ev.confusion, ev.class_names))
    return EXIT_OK


def _report_text(ev) -> str:
    width = max(len("weighted avg"), *(len(n) for n in ev.class_names))
    lines = [f"{'class':<{width}}  precision  recall      f1  support"]
    for r in ev.report_records():
        lines.append(f"{r['class']:<{width}}  {r['precision']:9.4f}  {r['recall']:6.4f}  "
                     f"{r['f1']:6.4f}  {r['support']:7d}")  # fmt: skip
    return "\n".join(lines)


def _matrix_text(matrix, names) -> str:
    cells = [[str(int(v)) for v in row] for row in matrix]
    width = max(len(str(n)) for n in names)
    side = max([len(c) for row in cells for c in row] + [len(str(n)) for n in names])
    lines = [" " * width + "  " + " ".join(f"{n:>{side}}" for n in names)]
    for name, row in zip(names, cells, strict=True):
        lines.append(f"{name:<{width}}  " + " ".join(f"{c:>{side}}" for c in row))
    return "\n".join(lines)


TERMS_SHOWN = 12  # the text form lists the largest terms; --json gives every one


def cmd_explain(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cnn_core import catalog
    from cnn_core.data import decoding
    from cnn_core.explain import preprocess, units

    model = _find_model(args.model)
    path = Path(args.image)
    try:
        image = decoding.decode_image(path.read_bytes(), path.name)
    except OSError as exc:
        raise CliError(f"{path}: cannot be read ({exc.strerror or exc}).") from exc
    except decoding.ImageRejected as exc:
        raise CliError(str(exc)) from exc
    steps = preprocess.prepare_upload_for(image, model)
    if steps.no_digit is not None:
        raise CliError(f"{path.name}: {steps.no_digit.message}")
    try:
        keras_model = catalog.load_trained(model.key)
    except catalog.TrainedModelError as exc:
        raise CliError(str(exc)) from exc
    if args.layer is None:
        layers = units.list_layers(keras_model)
        if args.json:
            print(json.dumps([{"name": i.name, "type": i.type, "output_shape": list(i.output_shape)}
                              for i in layers], indent=2))  # fmt: skip
            return EXIT_OK
        width = max(len(i.name) for i in layers)
        print(f"{model.label} ({model.key}) on {path.name}:")
        for i in layers:
            print(f"  {i.name:<{width}}  {i.type:<32}  {'×'.join(map(str, i.output_shape))}")
        print("Explain one unit: --layer NAME --unit ROW COL CHANNEL (a dense layer: --unit INDEX)")
        return EXIT_OK
    if not args.unit:
        raise CliError("--layer needs --unit: ROW COL CHANNEL of a map, or INDEX of a vector.")
    found = units.explain_unit(keras_model, steps.model_input, args.layer, args.unit)
    if args.json:
        print(json.dumps(found.to_json(), indent=2))
        return EXIT_OK
    print(_explanation_text(found))
    return EXIT_OK


def _explanation_text(found) -> str:
    top, left, bottom, right = found.receptive_field
    lines = [
        f"{found.layer} ({found.layer_type}), unit {tuple(found.unit)}",
        f"receptive field: input rows {top}..{bottom}, columns {left}..{right}",
    ]
    if found.terms:
        shown = sorted(found.terms, key=lambda t: -abs(t.get("product", t["input"])))
        lines.append(f"terms ({len(found.terms)}; the {min(TERMS_SHOWN, len(shown))} largest):")
        for term in shown[:TERMS_SHOWN]:
            lines.append("  " + ", ".join(f"{k} {_number(v)}" for k, v in term.items()))
    lines += [f"  {step.text} = {step.value:.6g}" for step in found.steps]
    lines.append(f"value: {found.value:.6g} (the model computed {found.activation:.6g})")
    return "\n".join(lines)


def _number(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def cmd_worker(args: argparse.Namespace) -> int:
    return jobs.run_worker(args.run_id)


def _train_parser(sub) -> None:
    p = sub.add_parser("train", help="start a training run (queued behind running ones)")
    base = p.add_mutually_exclusive_group()
    base.add_argument("--config", help="a JSON file of RunConfig fields; options override it")
    base.add_argument("--preset", metavar="KEY",
                      help="a Train page recipe, e.g. mnist-99 or fashion-best; options "
                      "override each of its runs")  # fmt: skip
    p.add_argument("--dataset", help="e.g. mnist, fashion_mnist, cifar10, user:NAME")
    p.add_argument("--source", help="force a dataset source, e.g. embedded")
    p.add_argument("--model", help="e.g. simple_convnet, lenet5, resnet, custom")
    p.add_argument("--layers", help="custom model layers: JSON list, or @file.json")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="learning rate (default: the model's)")
    p.add_argument("--optimizer", choices=run_config.OPTIMIZERS)
    p.add_argument("--momentum", type=float)
    p.add_argument("--lr-schedule", choices=run_config.LR_SCHEDULES)
    p.add_argument("--validation-split", type=float)
    p.add_argument("--augment-shift", type=float)
    p.add_argument("--augment-rotate", type=float)
    p.add_argument("--augment-zoom", type=float)
    p.add_argument("--augment-flip", action="store_true")
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--precision", choices=list(PRECISIONS), default="auto",
                   help="auto: bfloat16 where the CPU has it natively, else float32")  # fmt: skip
    p.add_argument("--seed", type=int)
    p.add_argument("--name")
    p.add_argument("--wait", action="store_true", help="follow progress until the end")
    p.set_defaults(func=cmd_train)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cnn_core", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    simple: list[tuple[str, str, Callable]] = [
        ("stop", "stop a run after its current batch (it can be resumed)", cmd_stop),
        ("show", "a run's config, status and epochs", cmd_show),
        ("delete", "delete a run that is not training (weights, checkpoints, curves)", cmd_delete),
        ("worker", "internal: the worker process of a run", cmd_worker),
    ]
    for name, text, func in simple:
        p = sub.add_parser(name, help=text)
        p.add_argument("run_id")
        p.set_defaults(func=func)
    p = sub.add_parser("resume", help="continue a stopped or interrupted run")
    p.add_argument("run_id")
    p.add_argument("--wait", action="store_true", help="follow progress until the end")
    p.set_defaults(func=cmd_resume)
    p = sub.add_parser("rename", help="give a run a name of your own")
    p.add_argument("run_id")
    p.add_argument("name")
    p.set_defaults(func=cmd_rename)
    sub.add_parser("runs", help="a table of all runs").set_defaults(func=cmd_runs)
    p = sub.add_parser("datasets", help="each dataset's sources and availability; "
                       "`datasets delete NAME` deletes an imported one")  # fmt: skip
    p.add_argument("action", nargs="?", choices=["list", "delete"], default="list")
    p.add_argument("name", nargs="?", help="the imported dataset to delete, e.g. flowers")
    p.set_defaults(func=cmd_datasets)
    p = sub.add_parser(
        "models", help="every trained model to use: the shipped ones and finished runs"
    )
    p.add_argument("--json", action="store_true", help="a JSON list instead of a table")
    p.set_defaults(func=cmd_models)
    p = sub.add_parser("evaluate", help="a trained model's accuracy, per-class report and "
                       "confusion matrix, on a test split or a folder of images")  # fmt: skip
    p.add_argument("model", help="a run id, a shipped model's name or a key from `models`")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--dataset", help="another dataset's test split (default: the model's)")
    where.add_argument("--images", metavar="DIR",
                       help="a folder with one sub-folder of images per class, named as the "
                       "model's classes")  # fmt: skip
    p.add_argument("--json", action="store_true", help="the scores as JSON")
    p.set_defaults(func=cmd_evaluate)
    p = sub.add_parser("explain", help="every number behind one unit of a trained model "
                       "for one image; without --layer, the model's layers")  # fmt: skip
    p.add_argument("model", help="a run id, a shipped model's name or a key from `models`")
    p.add_argument("image", help="an image file, read as the Predict page's Upload tab reads it")
    p.add_argument("--layer", help="the layer's name (list them without --layer)")
    p.add_argument("--unit", type=int, nargs="+", metavar="N",
                   help="ROW COL CHANNEL of a map, or INDEX of a vector")  # fmt: skip
    p.add_argument("--json", action="store_true", help="JSON instead of text")
    p.set_defaults(func=cmd_explain)
    p = sub.add_parser("download", help="download a dataset's official files")
    p.add_argument("dataset")
    p.set_defaults(func=cmd_download)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that are the user's to fix (ConfigError and ModelError are
    ValueErrors); the dataset module's only when a command imported it, to keep
    `runs` and `worker` quick to start."""
    errors: list[type[BaseException]] = [CliError, run_folder.RunError, ValueError]
    loaded = sys.modules.get("cnn_core.data.dataset")
    if loaded is not None:
        errors.append(loaded.DatasetError)
    return tuple(errors)


def main(argv: list[str] | None = None) -> int:
    """Runs one command; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except Exception as exc:
        if not isinstance(exc, _user_errors()):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        if args.command in ("train", "resume"):
            print("\nStopped following; the run goes on. Stop it with: "
                  "python -m cnn_core stop RUN_ID", file=sys.stderr)  # fmt: skip
        return EXIT_INTERRUPTED
