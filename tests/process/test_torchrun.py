"""`torchrun -m nvembed_eval` on CPU: two gloo ranks split the encoding; rank 0 writes results identical to one
process, and the other rank writes nothing."""

from __future__ import annotations

import json

from clirun import run_cli

ARGS = ["model=nv_embed_tiny", "tasks=[NVEvalSmokeSTS,NVEvalSmokeRetrieval]", "cache=off"]


def _scores(run_dir):
    from mteb import TaskResult

    # serialised, so that NaN metrics compare equal
    return {p.stem: json.dumps(TaskResult.from_disk(p).scores, sort_keys=True) for p in (run_dir / "results").glob("*")}


def test_two_ranks_match_one_process(tmp_path):
    single, multi = tmp_path / "single", tmp_path / "multi"
    one = run_cli([*ARGS, f"output_dir={single}"], tmp_path)
    assert one.returncode == 0, one.stderr[-2000:]
    proc = run_cli(
        ["--nproc_per_node", "2", "-m", "nvembed_eval", *ARGS, f"output_dir={multi}"],
        tmp_path,
        module="torch.distributed.run",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _scores(multi) == _scores(single)
    assert proc.stdout.count("| NVEvalSmokeSTS") == 1  # only rank 0 prints and writes
