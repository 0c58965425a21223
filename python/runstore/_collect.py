"""``collect_metrics``: run a model over an input table and keep per-sample metrics (3LC's
``collect_metrics``, "for more complex metrics-collection workflows").

The input table is read in batches without copying (Arrow slices of the store's memory map);
each batch goes through the predictor (any callable: a PyTorch, JAX or numpy model wrapper)
and every collector (callables returning per-row columns), and the columns are streamed into
one metrics table joined to the input table by ``example_id`` (:class:`MetricsTableWriter`):
the whole table is never in memory, only one batch and its outputs.

Collectors are numpy-only: :class:`ClassificationCollector` (loss from logits and labels,
predicted, confidence, correct, top-k), :class:`EmbeddingsCollector` (a model output as an
embedding column) and :class:`FunctionCollector` (any function); a plain callable
``f(batch, predictions) -> dict`` is a collector too.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Sequence, Union

import numpy as np
import pyarrow as pa

from ._errors import Error, InvalidInput

#: Rows per batch when ``batch_size`` is not given.
BATCH_SIZE_DEFAULT = 1024

Batch = Dict[str, np.ndarray]


def batch_to_numpy(batch: pa.RecordBatch) -> Batch:
    """A record batch as a dict of numpy arrays, without copying where Arrow allows: a
    fixed-size list column (an embedding, an image) becomes a 2-D array, a string column an
    object array."""
    out: Batch = {}
    for name, column in zip(batch.schema.names, batch.columns):
        kind = column.type
        if pa.types.is_fixed_size_list(kind) and column.null_count == 0:
            width = kind.list_size
            values = column.flatten().to_numpy(zero_copy_only=False)
            out[name] = values.reshape(len(column), width)
        else:
            out[name] = column.to_numpy(zero_copy_only=False)
    return out


def _output(predictions: Any, key: Optional[str], what: str) -> np.ndarray:
    """The array ``key`` of a predictor's output (a dict, an object with that attribute, a
    tuple indexed by an int key) or the whole output."""
    value = predictions
    if key is not None:
        if isinstance(predictions, Mapping):
            if key not in predictions:
                raise InvalidInput(
                    f"invalid input: {what}: the predictor's output has no {key!r}; it has "
                    f"{sorted(map(str, predictions))}"
                )
            value = predictions[key]
        elif hasattr(predictions, key):
            value = getattr(predictions, key)
        else:
            raise InvalidInput(
                f"invalid input: {what}: the predictor's output ({type(predictions).__name__}) "
                f"has no {key!r}"
            )
    elif isinstance(predictions, Mapping):
        raise InvalidInput(
            f"invalid input: {what}: the predictor returns a dict; name the output to use "
            f"(one of {sorted(map(str, predictions))})"
        )
    if value is None:
        raise InvalidInput(f"invalid input: {what} needs a predictor's output, and there is none")
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    return np.asarray(value)


class ClassificationCollector:
    """Per-sample classification metrics from logits and labels, in numpy.

    From the predictor's output (its ``logits_key`` entry when it returns a dict) of shape
    ``(rows, classes)`` and the batch's ``label_column``: ``loss`` (cross entropy of the
    softmax, computed stably from the logits), ``predicted`` (argmax), ``confidence`` (the
    top softmax probability), ``correct`` (predicted equals the label) and, for each k in
    ``top_k``, ``top{k}_correct``. ``probabilities=True`` takes the output as probabilities
    instead of logits. Columns are named with ``prefix``.
    """

    def __init__(
        self,
        label_column: str = "label",
        logits_key: Optional[str] = None,
        top_k: Sequence[int] = (),
        probabilities: bool = False,
        prefix: str = "",
    ) -> None:
        self.label_column = label_column
        self.logits_key = logits_key
        self.top_k = tuple(int(k) for k in top_k)
        self.probabilities = probabilities
        self.prefix = prefix
        for k in self.top_k:
            if k < 1:
                raise InvalidInput(f"invalid input: top_k values are at least 1, not {k}")

    def __call__(self, batch: Batch, predictions: Any) -> Dict[str, np.ndarray]:
        scores = _output(predictions, self.logits_key, "ClassificationCollector").astype(
            np.float64, copy=False
        )
        if scores.ndim != 2:
            raise InvalidInput(
                f"invalid input: ClassificationCollector needs (rows, classes) scores, got shape "
                f"{scores.shape}"
            )
        if self.label_column not in batch:
            raise InvalidInput(
                f"invalid input: ClassificationCollector: the input table has no column "
                f"{self.label_column!r}; it has {sorted(batch)}"
            )
        labels = np.asarray(batch[self.label_column]).astype(np.int64, copy=False)
        rows, classes = scores.shape
        if rows != len(labels):
            raise InvalidInput(
                f"invalid input: ClassificationCollector: {rows} rows of scores for a batch of "
                f"{len(labels)}"
            )
        if ((labels < 0) | (labels >= classes)).any():
            raise InvalidInput(
                f"invalid input: ClassificationCollector: a label is outside 0..{classes - 1}"
            )
        if self.probabilities:
            probs = scores / np.maximum(scores.sum(axis=1, keepdims=True), 1e-300)
            log_probs = np.log(np.maximum(probs, 1e-300))
        else:
            shifted = scores - scores.max(axis=1, keepdims=True)
            log_norm = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            log_probs = shifted - log_norm
            probs = np.exp(log_probs)
        index = np.arange(rows)
        predicted = probs.argmax(axis=1)
        p = self.prefix
        out = {
            f"{p}loss": (-log_probs[index, labels]).astype(np.float32),
            f"{p}predicted": predicted.astype(np.int32),
            f"{p}confidence": probs[index, predicted].astype(np.float32),
            f"{p}correct": predicted == labels,
        }
        for k in self.top_k:
            k_eff = min(k, classes)
            top = np.argpartition(-probs, k_eff - 1, axis=1)[:, :k_eff]
            out[f"{p}top{k}_correct"] = (top == labels[:, None]).any(axis=1)
        return out


class EmbeddingsCollector:
    """A model output as an embedding column: the predictor's ``key`` entry (or its whole
    output) of shape ``(rows, width)``, stored as ``column`` (float32, role ``embedding``),
    ready for :meth:`Run.reduce_embeddings_per_dataset`."""

    def __init__(self, key: Optional[str] = None, column: str = "embedding") -> None:
        self.key = key
        self.column = column

    def __call__(self, batch: Batch, predictions: Any) -> Dict[str, np.ndarray]:
        values = _output(predictions, self.key, "EmbeddingsCollector")
        if values.ndim != 2:
            raise InvalidInput(
                f"invalid input: EmbeddingsCollector needs (rows, width) values, got shape "
                f"{values.shape}"
            )
        return {self.column: values.astype(np.float32, copy=False)}


class FunctionCollector:
    """Any function ``fn(batch, predictions) -> {column: per-row values}`` as a collector
    (``batch`` is a dict of numpy arrays; ``predictions`` the predictor's output, or None).
    With ``needs_predictions=False`` it is called as ``fn(batch)``."""

    def __init__(self, fn: Callable[..., Mapping[str, Any]], needs_predictions: bool = True) -> None:
        if not callable(fn):
            raise InvalidInput(f"invalid input: FunctionCollector needs a callable, not {type(fn).__name__}")
        self.fn = fn
        self.needs_predictions = needs_predictions

    def __call__(self, batch: Batch, predictions: Any) -> Mapping[str, Any]:
        return self.fn(batch, predictions) if self.needs_predictions else self.fn(batch)


def _progress(total: int, enabled: Optional[bool], description: str) -> Any:
    if enabled is False:
        return None
    try:
        from tqdm.auto import tqdm  # type: ignore[import-not-found]
    except ImportError:
        return None
    return tqdm(total=total, desc=description, unit="rows")


def collect_metrics(
    table: Any,
    collectors: Union[Callable[..., Any], Iterable[Callable[..., Any]]],
    predictor: Optional[Callable[[Batch], Any]] = None,
    batch_size: int = BATCH_SIZE_DEFAULT,
    run: Any = None,
    split: str = "",
    stream_name: str = "",
    *,
    columns: Optional[Sequence[str]] = None,
    progress: Optional[bool] = None,
    table_writer_base_name: Optional[str] = None,
) -> Any:
    """Collects per-sample metrics of ``table`` into one metrics table of ``run`` (default:
    the active run), joined to ``table`` by ``example_id``; returns that :class:`Table`.

    ``table`` is an input :class:`Table` (or its url) of the run's store. It is read
    ``batch_size`` rows at a time (``columns`` limits what is read), zero-copy; each batch,
    as a dict of numpy arrays (embeddings 2-D), goes to ``predictor`` (any callable; its
    output is passed on as is) and then to every collector, each returning a dict of per-row
    columns (numpy arrays or lists; 2-D float arrays become embedding columns). Their columns
    make the batch's metrics rows, written before the next batch is read.

    The table is ``<run url>/metrics_<split>_NNNN`` (``metrics_NNNN`` without ``split``, or
    ``table_writer_base_name``), in ``stream_name``. The table is added to the run's input
    tables. The run is COLLECTING while this runs and gets its previous status back after.
    A progress bar is shown when ``tqdm`` is installed (``progress=False`` hides it).
    """
    from . import Run, Table, _active, _url_of
    from ._writer import MetricsTableWriter

    if run is None:
        run = _active.current()
    elif isinstance(run, str):
        run = Run.from_url(run)
    if callable(collectors):
        collectors = [collectors]
    collectors = list(collectors)
    if not collectors and predictor is None:
        raise InvalidInput("invalid input: collect_metrics needs at least one collector")
    for collector in collectors:
        if not callable(collector):
            raise InvalidInput(
                f"invalid input: a collector is a callable, not {type(collector).__name__}"
            )
    if predictor is not None and not callable(predictor):
        raise InvalidInput(f"invalid input: predictor must be callable, not {type(predictor).__name__}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInput(f"invalid input: batch_size must be a positive integer, not {batch_size!r}")
    source = table if isinstance(table, Table) else run.store.table(_url_of(table))
    base = table_writer_base_name or (f"metrics_{split}" if split else "metrics")
    url = source.url
    if url not in run.input_tables:
        run.add_input_table(url)
    arrow = source.to_arrow(columns=list(columns) if columns is not None else None)
    previous = run.status_name
    run.set_status_collecting()
    bar = _progress(arrow.num_rows, progress, f"collect {run.name}")
    offset = 0
    try:
        with MetricsTableWriter(
            run, url, table_writer_base_name=base, stream_name=stream_name
        ) as writer:
            for batch in arrow.to_batches(max_chunksize=batch_size):
                if batch.num_rows == 0:
                    continue
                data = batch_to_numpy(batch)
                predictions = predictor(data) if predictor is not None else None
                out: Dict[str, Any] = {
                    "example_id": np.arange(offset, offset + batch.num_rows, dtype=np.int64)
                }
                for collector in collectors:
                    columns_out = collector(data, predictions)
                    if not isinstance(columns_out, Mapping):
                        raise InvalidInput(
                            f"invalid input: collector {collector!r} returned "
                            f"{type(columns_out).__name__}; a collector returns a dict of columns"
                        )
                    for name, values in columns_out.items():
                        if name in out:
                            raise InvalidInput(
                                f"invalid input: two collectors write column {name!r}; give one a "
                                "prefix"
                            )
                        if hasattr(values, "detach"):
                            values = values.detach().cpu().numpy()
                        if len(values) != batch.num_rows:
                            raise InvalidInput(
                                f"invalid input: collector column {name!r} has {len(values)} "
                                f"rows for a batch of {batch.num_rows}"
                            )
                        out[name] = values
                writer.add_batch(out)
                offset += batch.num_rows
                if bar is not None:
                    bar.update(batch.num_rows)
            result = writer.finalize()
    finally:
        if bar is not None:
            bar.close()
        try:
            run.set_status(previous)
        except Error:
            pass
    return result
