"""What each evaluator needs of a task's data, checked after loading and before encoding: data too small or too uniform
for the metric (one STS pair, constant gold scores, a training split with one class, pairs of one label) would
otherwise cost a full encoding pass and end in a traceback or a NaN score."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from nvembed_eval.errors import DataError

if TYPE_CHECKING:
    from mteb import AbsTask


def check_evaluable(task: AbsTask) -> None:
    """Raise `DataError` (one line: task, split, what is wrong, what the evaluator needs) for degenerate data in the
    splits and subsets the task will evaluate; a structure it does not recognise is left to mteb."""
    from mteb import abstasks as a

    name = task.metadata.name
    for subset in task.hf_subsets:
        for split in task.eval_splits:
            data = _split(task, subset, split)
            if data is None:
                continue
            where = f"{name} ({split} split{'' if subset == 'default' else f', subset {subset}'})"
            if isinstance(task, a.AbsTaskSTS):
                scores = _column(data, "score")
                if scores is not None and (len(scores) < 2 or len(set(scores)) < 2):
                    detail = f"{len(scores)} pair" + ("" if len(scores) == 1 else "s")
                    detail += f", all with gold score {scores[0]}" if len(scores) >= 2 else ""
                    need = "STS's Spearman correlation needs at least 2 pairs with different gold scores"
                    raise DataError(f"{where} has {detail}; {need}")
            elif isinstance(task, a.AbsTaskPairClassification):
                labels = _column(data, task.label_column_name)
                if labels is not None and set(map(int, labels)) != {0, 1}:
                    need = "average precision needs pairs of both labels 0 and 1"
                    raise DataError(f"{where} has {len(labels)} pairs, all labelled {_labels(labels)}; {need}")
            elif isinstance(task, a.AbsTaskClassification) and not isinstance(task, a.AbsTaskMultilabelClassification):
                train = None if task.is_cross_validation else _split(task, subset, task.train_split)
                labels = None if train is None else _column(train, task.label_column_name)
                if labels is not None and len(set(map(str, labels))) < 2:
                    which = f", all of class {_labels(labels)}" if labels else ""
                    need = "the logistic-regression classifier needs at least 2 classes to train on"
                    raise DataError(f"{name} ({task.train_split} split) has {len(labels)} examples{which}; {need}")
                if len(data) == 0:
                    raise DataError(f"{where} has no rows; the classifier needs examples to score")
            elif isinstance(task, a.AbsTaskClusteringLegacy):
                for i, labels in enumerate(_column(data, task.label_column_name) or []):
                    if len(set(map(str, labels))) < 2:
                        raise DataError(
                            f"{where}: set {i + 1} has one cluster label; clustering (v-measure) needs at least 2 "
                            "different labels per set"
                        )


def _split(task: AbsTask, subset: str, split: str) -> Any:
    """The split's data, for mteb's two layouts: {split: data} (monolingual) and {subset: {split: data}}."""
    dataset = getattr(task, "dataset", None)
    if not isinstance(dataset, dict):
        return None
    if split not in dataset and subset in dataset:
        dataset = dataset[subset]
    try:
        return dataset[split]
    except (KeyError, TypeError):
        return None


def _column(data: Any, name: str) -> list[Any] | None:
    try:
        values = list(data[name])  # old-style rows hold lists of pairs: flattened below
    except (KeyError, TypeError, ValueError, IndexError):
        return None
    return [item for value in values for item in (value if isinstance(value, list) else [value])]


def _labels(labels: Iterable[Any]) -> str:
    return ", ".join(sorted({str(v) for v in labels})[:3])
