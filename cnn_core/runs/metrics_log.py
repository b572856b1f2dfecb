"""A run's metrics log (metrics.jsonl): appended by the worker, read incrementally by everyone.

One JSON line per batch window and one per epoch. `MetricsReader` is the one incremental
reader behind the live charts and the CLI's ``--follow``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from typing import Any, BinaryIO

from cnn_core.runs import run_folder, status

METRICS_CSV_COLUMNS = (
    "kind", "epoch", "batch", "step", "loss", "accuracy", "mse", "val_loss", "val_accuracy",
    "val_mse", "seconds", "images_per_s", "lr", "partial", "t",
)  # fmt: skip


def _parse_lines(chunk: bytes) -> list[dict[str, Any]]:
    records = []
    for line in chunk.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a damaged line (e.g. a crash mid-write before a resume) is skipped
        if isinstance(rec, dict):
            records.append(rec)
    return records


def read_metrics(run_id: str, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Reads the metrics records after ``offset`` (all of them by default); a poller keeps a
    `MetricsReader` instead.

    A last line still being written is left for the next call. A resume that drops an
    unfinished epoch rewrites the file and bumps ``RunStatus.history_rewrites``: a poller
    that sees that number change starts again from offset 0. An offset past the end of the
    file (it was rewritten) also restarts from 0.

    Args:
        run_id: the run.
        offset: the ``new_offset`` of the previous call, or 0.

    Returns:
        (records, new_offset): the complete records after offset, in order, and the
        offset to pass next time.
    """
    path = run_folder._existing(run_id).metrics
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if offset > size:
                offset = 0
            f.seek(offset)
            chunk = f.read()
    except FileNotFoundError:
        return [], 0
    end = chunk.rfind(b"\n") + 1
    return _parse_lines(chunk[:end]), offset + end


class MetricsReader:
    """Reads one run's metrics log incrementally, as a page or ``--follow`` polling it needs.

    Each `read_new` returns the records appended since the last call, each once and whole: a
    last line still being written is kept (``partial``) until its end arrives. When the file
    shrank, or the ``RunStatus.history_rewrites`` passed in changed (a resume rewrote it),
    the reader starts again from the top and says so in ``restarted``.
    """

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.offset = 0  # bytes read so far, the partial last line included
        self.partial = b""  # the start of a line whose end is not written yet
        self.restarted = False  # the last read_new began again at the top of the file
        self.history_rewrites: int | None = None  # the run's count at the last read_new

    def reset(self) -> None:
        """Reads from the top again at the next call."""
        self.offset, self.partial = 0, b""

    def read_new(self, history_rewrites: int | None = None) -> list[dict[str, Any]]:
        """The complete records appended since the last call, in order.

        Args:
            history_rewrites: the run's ``RunStatus.history_rewrites`` now; when it changed
                since the last call, the log was rewritten and is read again from the top.
        """
        path = run_folder._existing(self.run_id).metrics
        self.restarted = False
        if history_rewrites is not None:
            if self.history_rewrites is not None and history_rewrites != self.history_rewrites:
                self.reset()
                self.restarted = True
            self.history_rewrites = history_rewrites
        try:
            with open(path, "rb") as f:
                if self.offset > os.fstat(f.fileno()).st_size:
                    self.reset()
                    self.restarted = True
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            self.restarted = self.offset > 0
            self.reset()
            return []
        self.offset += len(chunk)
        data = self.partial + chunk
        end = data.rfind(b"\n") + 1
        self.partial = data[end:]
        return _parse_lines(data[:end])


def epoch_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The epoch lines among metrics records."""
    return [r for r in records if r.get("kind") == "epoch"]


def truncate_metrics(run_id: str, last_epoch: int, batches: int = 0) -> list[dict[str, Any]]:
    """Drops every metrics record after a checkpoint's position (atomically).

    Used by a resume from the checkpoint after ``last_epoch`` complete epochs and
    ``batches`` batches of the next one, so that the appended history has no gap and no
    duplicate. Of that next epoch only the batch records up to ``batches`` stay.

    Returns:
        The records kept.
    """
    p = run_folder.run_paths(run_id)
    records, _ = read_metrics(run_id)
    kept = [r for r in records if _before_position(r, last_epoch, batches)]
    data = "".join(json.dumps(r, allow_nan=False) + "\n" for r in kept).encode()
    if p.metrics.exists() and data != p.metrics.read_bytes():
        fd, tmp = tempfile.mkstemp(prefix=".metrics.", suffix=".tmp", dir=p.root)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p.metrics)
        status.update_status(
            run_id, history_rewrites=status._read_raw_status(p).history_rewrites + 1
        )
    return kept


def _before_position(record: dict[str, Any], last_epoch: int, batches: int) -> bool:
    epoch = int(record.get("epoch", 0))
    if epoch <= last_epoch:
        return True
    in_next = epoch == last_epoch + 1 and record.get("kind") == "batch"
    return in_next and int(record.get("batch") or 0) <= batches


def append_metrics(f: BinaryIO, record: dict[str, Any]) -> None:
    """Appends one record to metrics.jsonl opened with ``open(path, "ab")``.

    One write per line, so a poller sees whole lines or a tail it waits for.
    """
    line = json.dumps({k: run_folder._finite(v) for k, v in record.items()}, allow_nan=False) + "\n"
    f.write(line.encode())
    f.flush()


def metrics_csv(run_id: str) -> str:
    """The whole metrics log as CSV (one row per record, a "kind" column), for download."""
    records, _ = read_metrics(run_id)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=METRICS_CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()
