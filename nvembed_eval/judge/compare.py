"""The regression gate: per-task scores of a run against a published table or a baseline run, judged by tolerance,
by noise (intervals from per-item data, docs/significance.md), or by both. Exit codes: 0 nothing regressed, 1 something
did, 2 unusable input or a comparison that cannot mean what it says (docs/bad_input.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from nvembed_eval.judge import gate as refusals
from nvembed_eval.judge.bootstrap import check_settings
from nvembed_eval.judge.significance import DEFAULT_GATE, Gate, Noise, NoiseSettings, side_items, task_noise
from nvembed_eval.results.scores import Leaderboard, ScoreSet, benchmark_leaderboard
from nvembed_eval.tasks.benchmarks import Benchmark
from nvembed_eval.tasks.specs import content_source, load_task_spec

DEFAULT_TOLERANCE = 0.5  # points on the 0-100 scale


class Status(StrEnum):
    """Outcome of one task row."""

    ok = "ok"
    regression = "REGRESSION"
    improvement = "improved"  # beyond tolerance: shown, fails only with --two-sided
    missing = "missing"  # in the benchmark and the reference, not in the run: fails unless a subset is allowed
    no_reference = "no reference"  # in the run, not in the reference
    outside = "not in benchmark"  # outside the benchmark: shown, never judged


@dataclass(frozen=True)
class Row:
    task: str
    type: str
    ours: float | None
    reference: float | None
    delta: float | None
    status: Status
    flags: tuple[str, ...]
    noise: Noise = field(default_factory=Noise)
    basis: str = ""  # what judged it: "tolerance", "noise" or "tolerance and noise" ("" when not judged)

    def interval_note(self, gate: Gate) -> str:
        """How the row's interval was made, or why it has none (and that tolerance judged it alone)."""
        n = self.noise
        if n.delta is not None:
            return n.method + (f"; {n.why}" if n.why else "")
        if self.judged and gate is not Gate.tolerance and n.why:
            return f"tolerance only: {n.why}"
        return n.why or ""

    @property
    def judged(self) -> bool:
        """Scored on both sides inside the benchmark."""
        return self.status in (Status.ok, Status.regression, Status.improvement)


@dataclass
class Comparison:
    ours: ScoreSet
    reference: ScoreSet
    tolerance: float
    two_sided: bool
    benchmark: Benchmark
    rows: list[Row]
    ours_board: Leaderboard
    reference_board: Leaderboard
    notes: tuple[str, ...] = ()  # warnings the outputs must carry (other model, unknown model, benchmark choice)
    gate: Gate = DEFAULT_GATE
    settings: NoiseSettings = field(default_factory=NoiseSettings)
    allow_subset: bool = False  # reference tasks the run lacks are shown, not failed

    @property
    def failures(self) -> list[Row]:
        """Rows that fail the gate: regressions (and improvements when two-sided), and, unless a subset is allowed,
        benchmark tasks the reference scored but the run did not (a task that stopped running must not pass)."""
        bad = {Status.regression, Status.improvement} if self.two_sided else {Status.regression}
        if not self.allow_subset:
            bad.add(Status.missing)
        return [r for r in self.rows if r.status in bad]

    @property
    def uncovered(self) -> list[Row]:
        """Benchmark tasks the reference scored and the run did not."""
        return [r for r in self.rows if r.status is Status.missing]

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0


def _used_instruction(ours: ScoreSet, task: str) -> bool:
    """Whether this harness encoded the task with the spec's instruction (what "unverified instruction" is about);
    results from elsewhere never; a run of ours that does not record its prefixes counts as yes."""
    if not ours.made_here or ours.instruction_variant not in (None, "nv_embed_v2"):
        return False
    record = (ours.run_info.get("tasks") or {}).get(task) or {}
    prefixes = record.get("prefixes") if isinstance(record, dict) else None
    return not (isinstance(prefixes, dict) and prefixes and not any(prefixes.values()))  # all "": model ignores them


def _revision(revision: str) -> str:
    """A hub commit as its first 8 hex digits; local data (`local:sha256:<16 hex>`) as `local data sha256:<8 hex>`,
    so the flag shows local data as such and two local folders as different."""
    content = content_source(revision)
    return f"{content[0]} data sha256:{content[1][:8]}" if content else revision[:8]


def _flags(task: str, ours: ScoreSet, reference: ScoreSet) -> tuple[str, ...]:
    spec = load_task_spec(task)
    flags = []
    mine, theirs = ours.scores.get(task), reference.scores.get(task)
    if mine and theirs and not spec.subtasks:  # an aggregate's "revision" is mteb's aggregate version, not a dataset
        a, b = mine.dataset_revision, theirs.dataset_revision
        if a and b and a != b:
            flags.append(f"dataset revision differs (ours {_revision(a)}, reference {_revision(b)})")
    if mine and spec.has_instruction and not spec.instruction_verified and _used_instruction(ours, task):
        flags.append(f"unverified instruction ({spec.instruction_source})")
    flags.extend(refusals.evaluator_flags(spec.type, task, ours, reference))
    for side in (ours, reference):
        if task in side.notes:
            flags.append(f"{side.label}: {side.notes[task]}")
        if task in side.scores and side.scores[task].note:
            flags.append(f"{side.label}: {side.scores[task].note}")
    return tuple(flags)


def _status(
    a: float | None, b: float | None, in_benchmark: bool, tolerance: float, gate: Gate, noise: Noise
) -> tuple[Status, str]:
    """The row's status and what judged it. Without a paired interval every gate judges by tolerance (significant
    refuses such comparisons before this)."""
    if not in_benchmark or a is None or b is None:
        return (Status.outside if not in_benchmark else Status.no_reference if b is None else Status.missing), ""
    beyond = (a - b < -tolerance, a - b > tolerance)
    interval = noise.delta
    if gate is Gate.tolerance or interval is None:
        down, up, basis = *beyond, "tolerance"
    elif gate is Gate.significant:
        down, up, basis = interval.high < 0, interval.low > 0, "noise"
    else:
        down, up, basis = beyond[0] and interval.high < 0, beyond[1] and interval.low > 0, "tolerance and noise"
    return (Status.regression if down else Status.improvement if up else Status.ok), basis


def compare(
    ours: ScoreSet,
    reference: ScoreSet,
    tolerance: float = DEFAULT_TOLERANCE,
    benchmark: str | Benchmark | None = None,
    two_sided: bool = False,
    allow_other_model: bool = False,
    gate: Gate = DEFAULT_GATE,
    settings: NoiseSettings | None = None,
    allow_other_data: bool = False,
    allow_subset: bool = False,
) -> Comparison:
    """Compare the results under test with a published table or baseline results, task by task, or refuse. The
    Comparison's `exit_code` is 1 when a judged task failed or a reference task is missing from the run (without
    `allow_subset`), else 0. A missing score never counts as 0; tasks outside the benchmark never fail.

    `tolerance`: allowed drop in points (0-100). `benchmark`: the tasks that define coverage, averages and judging;
    None takes the run's own (run.json), else the reference's, else every task either side has. `gate`: tolerance;
    significant (the paired interval of ours - reference lies below 0); both (beyond tolerance and the interval below
    0; a task without per-item data on both sides is judged by tolerance alone, flagged). `settings`: the intervals'
    resamples, confidence and seed. `allow_other_data`: judge tasks whose provenance records name different data
    (other local files, another hub commit), flagged "data differs: ..." (refused by default). `allow_subset`: judge
    only the run's tasks; by default a benchmark task the reference scored and the run did not fails, so a task that
    stopped running cannot turn a gate green.

    Raises:
        ConfigError: non-finite or negative tolerance; unknown benchmark name; resamples or confidence out of range.
        ResultsError: the models differ (without `allow_other_model`); no benchmark task has a score on both sides;
            both sides' provenance records name different data for a judged task (without `allow_other_data`);
            `gate=significant` while a judged task has no paired interval."""
    refusals.check_tolerance(tolerance)
    refusals.check_two_sides(ours, reference)
    settings = settings or NoiseSettings()
    check_settings(settings.resamples, settings.confidence)
    notes = refusals.model_notes(ours, reference, allow_other_model)
    if isinstance(benchmark, Benchmark):
        bench, bench_notes = benchmark, []
    else:
        bench, bench_notes = refusals.choose_benchmark([ours] if ours.benchmark else [ours, reference], benchmark)
    theirs = reference.benchmark
    if theirs is not None and theirs.tasks != bench.tasks:
        bench_notes.append(f"the reference ran benchmark {theirs.describe()}; judged here: {bench.title}")
    bench_notes += [side.reading_note for side in (ours, reference) if side.reading_note]
    shared = refusals.check_shared(ours, reference, bench)
    data_flags = refusals.check_same_data(refusals.data_differences(ours, reference, shared), allow_other_data)
    names = set(ours.scores) | set(reference.scores) | set(ours.notes)
    ranked = [t for t in bench.tasks if t in names] + sorted(names - set(bench.tasks))
    rows = []
    for task in ranked:
        a = ours.scores[task].value if task in ours.scores else None
        b = reference.scores[task].value if task in reference.scores else None
        delta = a - b if a is not None and b is not None else None
        noise = (
            Noise() if a is None else task_noise(task, side_items(ours, task), side_items(reference, task), settings)
        )
        status, basis = _status(a, b, task in bench.tasks, tolerance, gate, noise)
        flags = (*([data_flags[task]] if task in data_flags else []), *_flags(task, ours, reference))
        rows.append(Row(task, load_task_spec(task).type, a, b, delta, status, flags, noise, basis))
    rows.sort(key=lambda r: not r.judged)  # stable: shared tasks first, each group in benchmark order
    if gate is Gate.significant:
        refusals.check_noise_gate([(r.task, r.noise.why or "") for r in rows if r.judged and r.noise.delta is None])
    boards = (benchmark_leaderboard(ours.values, bench), benchmark_leaderboard(reference.values, bench))
    outputs_notes = (*notes, *bench_notes)
    return Comparison(
        ours, reference, tolerance, two_sided, bench, rows, *boards, outputs_notes, gate, settings, allow_subset
    )
