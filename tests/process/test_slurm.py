"""Scale-out through a real one-node SLURM cluster started by the tests (tests/slurm_cluster.py): every sweep runs
`nvembed-eval -m hydra/launcher=slurm ...` as a user would, and every score is compared bit for bit with a local run
of the same settings. Jobs are paused mid-encoding by holding one chunk claim of the embedding cache (the mechanism
concurrent jobs use to split work), so that a requeue, a time limit or a scancel hits a job with finished shards on
disk and one chunk still to do, whatever the machine's speed."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clirun import REPO, CliResult, isolated_env, scifact_subset

from nvembed_eval.cache.claims import ChunkClaims
from nvembed_eval.cache.encoder import _chunk_id, text_keys

pytestmark = pytest.mark.slurm

SMOKE = REPO / "nvembed_eval" / "tasks" / "smoke" / "data"
SHARD = 4  # cache.shard_size: NVEvalSmokeSTS is 2 encode calls of 32 sentences, 8 shards each
HELD = 2  # the chunk of NVEvalSmokeSTS's first call that the test holds: jobs stop there with 7 of its 8 shards
LAUNCH = [
    "-m",
    "hydra/launcher=slurm",
    "hydra.launcher.gpus_per_node=0",  # the CPU cluster has no GPU (slurm.yaml asks for 1)
    "hydra.launcher.cpus_per_task=1",  # 2 CPUs here (slurm.yaml asks for 8)
    "hydra.launcher.mem_gb=1",  # slurm.yaml asks for 64 GB, more than this machine has
]
MINILM = ["model=minilm", "model.show_progress=false", f"cache.shard_size={SHARD}"]
FANOUT = ("NVEvalSmokeSTS", "NVEvalSmokeSummarization", "NVEvalSmokeRetrieval")
RESUME_TASKS = "tasks=[NVEvalSmokeRetrieval,NVEvalSmokeSTS]"  # Retrieval finishes, STS is held mid-encoding


# --- helpers ---


def _env(cluster, tmp: Path, **extra: str) -> dict[str, str]:
    return {**isolated_env(tmp), "SLURM_CONF": cluster.env["SLURM_CONF"], **extra}


def _cli(cluster, tmp: Path, args: list[str], timeout: float = 300, **extra: str) -> CliResult:
    proc = subprocess.run(
        [sys.executable, "-m", "nvembed_eval", *args],
        cwd=REPO,
        env=_env(cluster, tmp, **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


class Sweep:
    """A CLI run in the background (its console kept in files), for tests that act on its jobs while it runs."""

    started: list[Sweep] = []  # noqa: RUF012 (every one, so that the module's teardown stops those left running)

    def __init__(self, cluster, tmp: Path, args: list[str], name: str, **extra: str) -> None:
        Sweep.started.append(self)
        self.out, self.err = tmp / f"{name}.stdout", tmp / f"{name}.stderr"
        self.started = time.monotonic()
        with self.out.open("w") as out, self.err.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "nvembed_eval", *args],
                cwd=REPO,
                env=_env(cluster, tmp, **extra),
                stdout=out,
                stderr=err,
                text=True,
            )

    def wait(self, timeout: float = 300) -> CliResult:
        self.proc.wait(timeout=timeout)
        self.seconds = time.monotonic() - self.started
        return CliResult(self.proc.returncode, self.out.read_text(), self.err.read_text())

    def running(self) -> bool:
        return self.proc.poll() is None


def _scores(run_dir: Path) -> dict[str, str]:
    """Every metric of every task (mteb's TaskResult scores), serialised so that NaN compares equal."""
    from mteb import TaskResult

    out = {}
    for path in sorted((run_dir / "results").glob("*.json")):
        result = TaskResult.from_disk(path)
        out[result.task_name] = json.dumps(result.scores, sort_keys=True)
    return out


def _record(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def _shards(cache: Path) -> dict[str, int]:
    """Shard file name -> inode: a shard written again (encoded twice) gets a new inode under the same name."""
    return {p.name: p.stat().st_ino for p in cache.rglob("shard-*.safetensors")}


def _leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.rglob("*") if p.name.startswith("claim-") or p.name.endswith(".partial"))


def _job_ids(sweep_dir: Path) -> list[str]:
    """SLURM job ids of a sweep, from submitit's folders (`<sweep>/.submitit/<job id>/`)."""
    folder = sweep_dir / ".submitit"
    if not folder.is_dir():
        return []
    jobs = [p.name for p in folder.iterdir() if (p / f"{p.name}_submitted.pkl").exists()]  # not the array's script
    return sorted(jobs, key=_job_order)


def _job_order(job_id: str) -> tuple[int, int]:
    main, _, index = job_id.partition("_")
    return int(main), int(index or 0)


def _job_log(sweep_dir: Path, job_id: str, task: int = 0) -> str:
    """A job task's stdout and stderr logs (submitit logs INFO to stdout, warnings and the run's log to stderr)."""
    paths = [sweep_dir / ".submitit" / job_id / f"{job_id}_{task}_log.{ext}" for ext in ("out", "err")]
    return "\n".join(path.read_text(errors="replace") for path in paths if path.exists())


def _pending_again(cluster, job_id: str) -> bool:
    """The job was requeued and its old processes are gone: PENDING with one restart."""
    return cluster.jobs().get(job_id, {}).get("state") == "PENDING" and cluster.show_job(job_id)["Restarts"] == "1"


def _sts_chunk(identity_key: str) -> str:
    """The id of NVEvalSmokeSTS's chunk HELD: the first encode call is the sentence1 column, in file order."""
    rows = [json.loads(line) for line in (SMOKE / "NVEvalSmokeSTS" / "test.jsonl").open()]
    first = list(dict.fromkeys(row["sentence1"] for row in rows))
    return _chunk_id(text_keys(identity_key, "", first)[HELD * SHARD : (HELD + 1) * SHARD])


def _hold(cache: Path, identity_key: str):
    """Claim the held STS chunk in `cache` as a live job on this host would: jobs encode everything else first, then
    wait for it (the claim's owner is this test process, alive and heart-beating)."""
    claim = ChunkClaims(cache / identity_key[:16]).try_acquire(_sts_chunk(identity_key))
    assert claim is not None
    return claim


def _console_lines(result: CliResult) -> list[str]:
    return [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]


def _assert_quiet(result: CliResult) -> None:
    """No warning on the console of a sweep, none repeated (the sacct warnings of submitit, among others)."""
    lines = [re.sub(r"^\[[^]]*\]", "", line) for line in _console_lines(result)]  # without the time stamp
    noisy = ("Bypassing sacct error", "status may be inaccurate", "accounting storage is disabled", "WARNING")
    assert not [line for line in lines if any(word in line for word in noisy)], lines
    assert len(lines) == len(set(lines)), lines
    assert sum("job states come from squeue" in line for line in lines) == 1, lines  # said once, as information


# --- local baselines (same settings, no SLURM), made in the background while the first SLURM tests run ---


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    yield tmp_path_factory.mktemp("slurm-work")
    for sweep in Sweep.started:  # a test that failed half-way leaves no launcher waiting for a cluster that is gone
        if sweep.running():
            sweep.proc.kill()
            sweep.proc.wait()


ABLATION_DOCS = 96
ABLATION = [
    "model=minilm",
    "model.show_progress=false",
    "model.use_instructions=true",  # MiniLM prepends the instruction as text; the documents get none in either variant
    "cache.shard_size=8",
    "tasks=[SciFact]",
]
TINY = ["model=nv_embed_tiny", "model.progress=true", "batch_size=8", "tasks=[NVEvalSmokeSTS,NVEvalSmokeRetrieval]"]
BASELINE_SCRIPT = """
import json, sys
from pathlib import Path
import nvembed_eval
for args, output_dir in json.loads(sys.argv[1]):
    nvembed_eval.evaluate(args, output_dir=output_dir)
    (Path(output_dir) / ".baseline-done").touch()
"""


class Baselines:
    """The local runs every SLURM run is compared with, same settings, made through `nvembed_eval.evaluate` (the
    CLI's own path) one after the other in one background process: MiniLM on the three fan-out tasks (also the
    resume scenarios' tasks) with its own cache, whose shards are what a clean run writes; the tiny NV-Embed in one
    process; the two instruction variants of the ablation."""

    def __init__(self, work: Path, tiny_checkpoint: Path) -> None:
        self.scifact = scifact_subset(work / "scifact-subset", ABLATION_DOCS)
        self.minilm_cache = work / "local-minilm-cache"
        runs = {
            "minilm": [*MINILM, f"tasks=[{','.join(FANOUT)}]", f"cache.dir={self.minilm_cache}"],
            "tiny": [*TINY, f"cache.dir={work / 'local-tiny-cache'}"],
            "ablation-0": [*ABLATION, "instructions=nv_embed_v2", f"data_dir={self.scifact}"],
            "ablation-1": [*ABLATION, "instructions=none", f"data_dir={self.scifact}"],
        }
        runs["ablation-0"].append(f"cache.dir={work / 'local-ablation-cache'}")
        runs["ablation-1"].append(f"cache.dir={work / 'local-ablation-cache'}")
        self.dirs = {name: work / f"local-{name}" for name in runs}
        jobs = [(args, str(self.dirs[name])) for name, args in runs.items()]
        self.log = work / "baselines.stderr"
        with self.log.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", BASELINE_SCRIPT, json.dumps(jobs)],
                cwd=REPO,
                env={**isolated_env(work), "NVEMBED_TINY_CHECKPOINT": str(tiny_checkpoint)},
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    def run(self, name: str) -> Path:
        """The run folder of baseline `name`, once it is finished."""
        deadline = time.monotonic() + 600
        while not (self.dirs[name] / ".baseline-done").exists():
            assert self.proc.poll() is None, f"local baselines failed:\n{self.log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "local baselines: timed out"
            time.sleep(0.2)
        return self.dirs[name]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="module")
def tiny_checkpoint(work, shared_dir) -> Path:
    from nvembed_eval.models.nvembed.tiny import write_tiny_checkpoint

    return write_tiny_checkpoint(work / "nv-embed-tiny", tokenizer_dir=shared_dir / "golden" / "nvembed-tiny")


@pytest.fixture(scope="module")
def baselines(work, tiny_checkpoint):
    runs = Baselines(work, tiny_checkpoint)
    yield runs
    runs.stop()


@pytest.fixture(scope="module")
def local_minilm(baselines):
    """The local MiniLM run: its folder, its cache and its run.json."""
    run, cache = baselines.run("minilm"), baselines.minilm_cache
    record = _record(run)
    key = record["tasks"]["NVEvalSmokeSTS"]["identity_key"]
    # the held chunk is a real chunk of a clean run (the test's reading of the smoke data and of mteb's calls holds)
    assert _sts_chunk(key) in {_chunk_id(_keys(p)) for p in cache.rglob("shard-*.safetensors")}
    return run, cache, record


def _keys(shard: Path):
    from safetensors.numpy import load_file

    return load_file(shard)["keys"]


# --- task fan-out (first: it runs while the local baselines are made) ---


def test_task_fan_out_runs_at_most_array_parallelism_jobs_at_once(slurm_cluster, work, baselines):
    """`tasks=[A],[B],[C]` with array_parallelism=2: one array of 3 jobs, never more than 2 running, each job's scores
    identical to the local run's, and a console without warnings."""
    slurm_cluster.wait_for(slurm_cluster.no_job_running, "the cluster to be free")
    sweep_dir, cache = work / "fanout", work / "fanout-cache"
    args = [
        *LAUNCH,
        "hydra.launcher.array_parallelism=2",
        *MINILM,
        "tasks=" + ",".join(f"[{task}]" for task in FANOUT),
        f"output_dir={sweep_dir}",
        f"cache.dir={cache}",
    ]
    sweep = Sweep(slurm_cluster, work, args, "fanout")
    running_max, throttled, seen = 0, False, {}
    while sweep.running():
        ours = {
            i: j
            for i, j in slurm_cluster.jobs().items()
            if i.split("_")[0] in {x.split("_")[0] for x in _job_ids(sweep_dir)}
        }
        seen.update(ours)
        running_max = max(running_max, sum(j["state"] == "RUNNING" for j in ours.values()))
        throttled |= any(j["reason"] == "JobArrayTaskLimit" for j in ours.values())
        time.sleep(0.2)
    result = sweep.wait()
    assert result.returncode == 0, result.stderr[-3000:]
    _assert_quiet(result)
    ids = _job_ids(sweep_dir)
    assert len(ids) == 3 and len({i.split("_")[0] for i in ids}) == 1  # one array
    array = ids[0].split("_")[0]
    assert "#SBATCH --array=0-2%2" in (sweep_dir / ".submitit" / array / f"{array}_submission.sh").read_text()
    assert running_max == 2 and throttled, (running_max, throttled, seen)
    local = _scores(baselines.run("minilm"))
    for number, task in enumerate(FANOUT):
        assert _scores(sweep_dir / str(number)) == {task: local[task]}
    print(f"\nfan-out: 3 jobs, array_parallelism=2, {sweep.seconds:.1f} s, at most {running_max} running")


# --- preemption: scontrol requeue, and the time limit's signal (its job runs while the next tests do) ---
# The tasks of both: NVEvalSmokeRetrieval (finished first), then NVEvalSmokeSTS, held at 7 of its first call's 8 shards.


class HeldSweep:
    """A one-job sweep of RESUME_TASKS that stops mid-task at the held chunk; `wait_for_requeue()` releases the
    chunk once the job is pending again (its old processes gone), so that only the rerun can go on."""

    def __init__(self, cluster, work: Path, local_minilm, name: str, extra: list[str]) -> None:
        _run, _cache, record = local_minilm
        self.cluster, self.name = cluster, name
        self.dir, self.cache = work / f"{name}-sweep", work / f"{name}-cache"
        self.claim, self.released = _hold(self.cache, record["tasks"]["NVEvalSmokeSTS"]["identity_key"]), False
        self.at_hold = record["tasks"]["NVEvalSmokeRetrieval"]["cache"]["shards_written"] + 8 - 1
        args = [*LAUNCH, *extra, *MINILM, RESUME_TASKS, f"output_dir={self.dir}", f"cache.dir={self.cache}"]
        self.sweep = Sweep(cluster, work, args, name)

    def wait_for_hold(self) -> None:
        self.cluster.wait_for(lambda: len(_shards(self.cache)) == self.at_hold, f"{self.name}: the job to hold", 180)
        self.job = _job_ids(self.dir)[0]
        assert self.cluster.jobs()[self.job]["state"] == "RUNNING"
        self.held_at = time.monotonic()
        self.shards_then = _shards(self.cache)
        self.retrieval_then = (self.dir / "0" / "results" / "NVEvalSmokeRetrieval.json").stat()

    def wait_for_requeue(self, what: str, timeout: float = 120) -> float:
        """Seconds from the hold until the job is pending again; then the held chunk is released."""
        self.cluster.wait_for(lambda: _pending_again(self.cluster, self.job), f"{self.name}: {what}", timeout)
        after = time.monotonic() - self.held_at
        self.release()
        return after

    def release(self) -> None:
        """Give the held chunk back, once (a second unlink could delete a claim the rerun has taken since)."""
        if not self.released:
            self.released = True
            self.claim.release()

    def check(self, local_minilm) -> dict:
        """The rerun: same scores as the local run, the finished task kept, the held task resumed."""
        local_run, local_cache, record = local_minilm
        result = self.sweep.wait()
        assert result.returncode == 0, result.stderr[-3000:]
        _assert_quiet(result)
        run_dir = self.dir / "0"
        local = _scores(local_run)
        assert _scores(run_dir) == {t: local[t] for t in ("NVEvalSmokeRetrieval", "NVEvalSmokeSTS")}
        shards_now = _shards(self.cache)
        assert {n: shards_now.get(n) for n in self.shards_then} == self.shards_then  # no finished shard rewritten
        sts_shards = record["tasks"]["NVEvalSmokeSTS"]["cache"]["shards_written"]
        retrieval_shards = record["tasks"]["NVEvalSmokeRetrieval"]["cache"]["shards_written"]
        assert len(shards_now) == retrieval_shards + sts_shards and set(shards_now) <= set(_shards(local_cache))
        assert not _leftovers(self.cache)  # no claim, no temporary file left behind
        now = (run_dir / "results" / "NVEvalSmokeRetrieval.json").stat()
        assert (now.st_ino, now.st_mtime_ns) == (self.retrieval_then.st_ino, self.retrieval_then.st_mtime_ns)
        assert "NVEvalSmokeRetrieval: a result made with the same settings is kept" in _job_log(self.dir, self.job)
        sts = _record(run_dir)["tasks"]["NVEvalSmokeSTS"]["cache"]
        assert (sts["hits"], sts["misses"], sts["shards_written"]) == (7 * SHARD, 64 - 7 * SHARD, sts_shards - 7)
        assert self.cluster.show_job(self.job)["Restarts"] == "1"
        return sts

    def stop(self) -> None:
        """Teardown when a test did not get to the end: no launcher, job or claim left behind."""
        if self.sweep.running():
            self.sweep.proc.kill()
            self.sweep.proc.wait()
            for job in _job_ids(self.dir):
                self.cluster.run("scancel", job, check=False)
        self.release()


@pytest.fixture(scope="module")
def time_limited(slurm_cluster, work, local_minilm):
    """The time-limit job, started with the first test that asks for it and checked later: it spends most of its
    two minutes waiting for SLURM's signal while the tests in between run. A thread releases its held chunk as soon
    as submitit has requeued the job.

    The controller checks time limits every 30 s, and sends `--signal=USR2@30` at the first check at most 60 s before
    the limit: 60 to 90 s after the start of a 2-minute job, long after it holds (about 15 s) and long before its
    rerun could reach its own signal."""
    import threading

    held = HeldSweep(
        slurm_cluster,
        work,
        local_minilm,
        "timeout",
        ["hydra.launcher.timeout_min=2", "hydra.launcher.signal_delay_s=30", "hydra.launcher.max_num_timeout=3"],
    )
    outcome: dict = {}

    def watch() -> None:
        try:
            held.wait_for_hold()
            outcome["signal_after_hold_s"] = held.wait_for_requeue("the time limit's signal")
        except BaseException as exc:  # reported by the test that checks this job
            outcome["error"] = exc

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    yield held, watcher, outcome
    held.stop()  # a no-op once the test has checked the job; else (deselected, failed) the job is cancelled


def test_requeued_job_resumes_from_its_last_finished_shard(slurm_cluster, work, local_minilm, time_limited):
    """Preemption: `scontrol requeue` of a job mid-task (SIGTERM, which submitit ignores, then SIGKILL after
    KillWait). The rerun keeps the finished task, takes the 7 finished shards from the cache and encodes the rest."""
    held = HeldSweep(slurm_cluster, work, local_minilm, "requeue", [])
    try:
        held.wait_for_hold()
        slurm_cluster.run("scontrol", "requeue", held.job)
        pending_after = held.wait_for_requeue("the requeued job to be pending")
        sts = held.check(local_minilm)
    finally:
        held.stop()
    print(f"\nrequeue: {held.sweep.seconds:.1f} s, pending {pending_after:.1f} s after the requeue; rerun STS {sts}")


# --- jobs that fail inside SLURM ---


def test_jobs_that_fail_inside_slurm_surface_as_one_line_each(slurm_cluster, work):
    """Two jobs that fail where only the job can tell: a model folder without a model (`model.path`, read when the
    model loads) and a task without data in `data_dir`. Each is one `error:` line naming the job, its overrides and
    its log file (which holds the same error); no traceback; exit 1."""
    empty = work / "empty"
    empty.mkdir(exist_ok=True)
    sweep_dir = work / "failing"
    args = [
        *LAUNCH,
        "model=minilm",
        f"model.path={empty}",
        "tasks=[NVEvalSmokeSTS],[STSBenchmark]",
        f"data_dir={empty}",
        f"output_dir={sweep_dir}",
        f"cache.dir={work / 'failing-cache'}",
    ]
    started = time.monotonic()
    result = _cli(slurm_cluster, work, args)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 2, result.stderr
    first, second = _job_ids(sweep_dir)
    for line, job_id, task, reason in (
        (errors[0], first, "NVEvalSmokeSTS", "holds neither modules.json nor config.json"),
        (errors[1], second, "STSBenchmark", "data_dir has no folder for STSBenchmark"),
    ):
        assert line.startswith(f"error: SLURM job {job_id} (#") and f"tasks=[{task}]" in line and reason in line, line
        log = sweep_dir / ".submitit" / job_id / f"{job_id}_0_log.err"
        assert line.endswith(f"; log: {log}") and reason in log.read_text(), line
    assert not list(sweep_dir.glob("*/results/*.json"))  # nothing half-written
    print(f"\nfailing jobs: reported in {time.monotonic() - started:.1f} s")


# --- scancel of one array task, then the same command again ---


def test_cancelled_array_task_is_the_only_work_redone(slurm_cluster, work, local_minilm):
    """Two array jobs; job 1 is cancelled (`scancel`) mid-task while job 0 has finished. The launcher waits for
    both, names the cancelled job and its log in one line and exits 1; the same command again keeps job 0's result
    and resumes job 1 from its finished shards."""
    local_run, _local_cache, local_record = local_minilm
    key = local_record["tasks"]["NVEvalSmokeSTS"]["identity_key"]
    summ_shards = local_record["tasks"]["NVEvalSmokeSummarization"]["cache"]["shards_written"]
    sweep_dir, cache = work / "scancel", work / "scancel-cache"
    args = [
        *LAUNCH,
        *MINILM,
        "tasks=[NVEvalSmokeSummarization],[NVEvalSmokeSTS]",
        f"output_dir={sweep_dir}",
        f"cache.dir={cache}",
    ]
    claim = _hold(cache, key)
    sweep = Sweep(slurm_cluster, work, args, "scancel")
    slurm_cluster.wait_for(lambda: len(_shards(cache)) == summ_shards + 7, "job 1 to hold, job 0 to finish", 180)
    slurm_cluster.wait_for(lambda: (sweep_dir / "0" / "results" / "NVEvalSmokeSummarization.json").exists(), "job 0")
    _first, second = _job_ids(sweep_dir)
    slurm_cluster.run("scancel", second)
    cancelled = sweep.wait()
    claim.release()
    assert cancelled.returncode == 1
    errors = [line for line in cancelled.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, cancelled.stderr
    assert errors[0].startswith(f"error: SLURM job {second} (#1: ") and "CANCELLED" in errors[0]
    assert errors[0].endswith(f"log: {sweep_dir / '.submitit' / second / f'{second}_0_log.err'}")
    done_then = (sweep_dir / "0" / "results" / "NVEvalSmokeSummarization.json").stat()
    shards_then = _shards(cache)

    again = _cli(slurm_cluster, work, args)
    assert again.returncode == 0, again.stderr[-3000:]
    _assert_quiet(again)
    local = _scores(local_run)
    assert _scores(sweep_dir / "0") == {"NVEvalSmokeSummarization": local["NVEvalSmokeSummarization"]}
    assert _scores(sweep_dir / "1") == {"NVEvalSmokeSTS": local["NVEvalSmokeSTS"]}
    done_now = (sweep_dir / "0" / "results" / "NVEvalSmokeSummarization.json").stat()
    assert (done_now.st_ino, done_now.st_mtime_ns) == (done_then.st_ino, done_then.st_mtime_ns)  # job 0: kept
    shards_now = _shards(cache)
    assert {n: shards_now.get(n) for n in shards_then} == shards_then
    sts = _record(sweep_dir / "1")["tasks"]["NVEvalSmokeSTS"]["cache"]
    assert (sts["hits"], sts["misses"]) == (7 * SHARD, 64 - 7 * SHARD)  # job 1: from its last finished shard
    kept = "NVEvalSmokeSummarization: a result made with the same settings is kept"
    assert kept in _job_log(sweep_dir, _job_ids(sweep_dir)[-2])  # the rerun's job 0 only read its result
    assert not _leftovers(cache)


def test_job_at_its_time_limit_is_checkpointed_requeued_and_resumed(slurm_cluster, local_minilm, time_limited):
    """Time limit (timeout_min=2, signal_delay_s=30): SLURM signals USR2 before the limit; submitit calls the
    launcher's checkpoint, requeues the job (one of max_num_timeout=3 used) and exits; the rerun resumes as above."""
    held, watcher, outcome = time_limited
    watcher.join(timeout=180)
    assert "error" not in outcome, outcome.get("error")
    sts = held.check(local_minilm)
    log = _job_log(held.dir, held.job)
    assert "Caught signal SIGUSR2" in log and "this job is timed-out" in log and "(2 remaining timeouts)" in log
    after = outcome["signal_after_hold_s"]
    print(f"\ntime limit: {held.sweep.seconds:.1f} s, requeued {after:.1f} s after the hold; rerun STS {sts}")


# --- two jobs of a sweep share one cache folder and one corpus (this test and the next want both CPUs: they come
# after the time-limit job) ---


def test_instruction_ablation_jobs_split_their_shared_corpus(slurm_cluster, work, baselines):
    """`instructions=nv_embed_v2,none` on SciFact: the queries differ, the documents carry no instruction in either
    job, so both jobs need the same corpus vectors. Running together on one cache folder, they split its chunks
    through the claims: every document is encoded once in total, by one job or the other."""
    slurm_cluster.wait_for(slurm_cluster.no_job_running, "the cluster to be free")
    data = baselines.scifact
    sweep_dir, cache = work / "ablation", work / "ablation-cache"
    args = [*LAUNCH, *ABLATION, "instructions=nv_embed_v2,none", f"data_dir={data}"]
    sweep = Sweep(slurm_cluster, work, [*args, f"output_dir={sweep_dir}", f"cache.dir={cache}"], "ablation")
    result = sweep.wait()
    assert result.returncode == 0, result.stderr[-3000:]
    _assert_quiet(result)
    for job in ("0", "1"):
        assert _scores(sweep_dir / job) == _scores(baselines.run(f"ablation-{job}"))
    counters = [_record(sweep_dir / job)["tasks"]["SciFact"]["cache"] for job in ("0", "1")]
    with gzip.open(data / "SciFact" / "queries.jsonl.gz", "rt") as handle:
        queries = sum(1 for _ in handle)
    corpus_encoded = [c["misses"] - queries for c in counters]  # each job encodes its own queries (other prefix)
    assert sum(corpus_encoded) == ABLATION_DOCS, counters  # every document encoded once in total
    assert all(n > 0 for n in corpus_encoded), counters  # and the work was split
    assert [c["from_peers"] + c["hits"] for c in counters] == [ABLATION_DOCS - n for n in corpus_encoded]
    assert not _leftovers(cache)
    print(f"\nablation: {sweep.seconds:.1f} s; documents encoded per job {corpus_encoded} of {ABLATION_DOCS}")


# --- several processes in one job ---


def test_two_tasks_per_job_split_the_encoding_and_match_one_process(slurm_cluster, work, baselines, tiny_checkpoint):
    """`tasks_per_node=2`: submitit starts two processes in the job; the launcher exports the torch.distributed
    variables from submitit's environment, the two gloo ranks split every encode call's batches, and rank 0 alone
    writes results identical to one local process."""
    slurm_cluster.wait_for(slurm_cluster.no_job_running, "the cluster to be free")
    single = baselines.run("tiny")
    sweep_dir = work / "two-tasks"
    args = [*LAUNCH, "hydra.launcher.tasks_per_node=2", *TINY, f"output_dir={sweep_dir}"]
    started = time.monotonic()
    result = _cli(
        slurm_cluster,
        work,
        [*args, f"cache.dir={work / 'two-tasks-cache'}"],
        NVEMBED_TINY_CHECKPOINT=str(tiny_checkpoint),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    _assert_quiet(result)
    assert _scores(sweep_dir / "0") == _scores(single)
    (job,) = _job_ids(sweep_dir)
    rank0, rank1 = _job_log(sweep_dir, job, 0), _job_log(sweep_dir, job, 1)
    assert "global_rank=0(2)" in rank0 and "global_rank=1(2)" in rank1
    # rank 0's progress bars count the texts of its own share: each bar starts at 0/<share>, once per encode call
    totals = [int(n) for n in re.findall(r"encode nvembed-eval/NV-Embed-tiny: +0%\|[^|\n]*\| 0/(\d+) ", rank0)]
    texts = _record(single)["tasks"]
    all_texts = sum(texts[t]["texts_encoded"] for t in ("NVEvalSmokeSTS", "NVEvalSmokeRetrieval"))
    calls = [32, 32, 24, 36]  # STS: sentence1, sentence2; Retrieval: queries, corpus
    assert len(totals) == len(calls) and all(0 < n < c for n, c in zip(totals, calls, strict=True)), totals
    assert sum(calls) == all_texts
    # rank 0 stored the gathered vectors: the same shard files, named by their checksums, as the one-process run's
    assert set(_shards(work / "two-tasks-cache")) == set(_shards(work / "local-tiny-cache")) != set()
    print(f"\ntwo tasks per job: {time.monotonic() - started:.1f} s; rank 0 encoded {totals} of {calls} texts")
