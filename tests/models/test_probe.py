"""`nvembed-eval-probe`: a baseline re-checked passes bit for bit, a 1e-3 change of one weight fails with the worst
texts listed, unusable input exits 2 with one line, and the embedding cache is never touched.
"""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from clirun import SHARED, invoke

from nvembed_eval.cli import probe_main


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from nvembed_eval.models.nvembed.tiny import write_tiny_checkpoint

    folder = tmp_path_factory.mktemp("probe-ckpt") / "tiny"
    return write_tiny_checkpoint(folder, tokenizer_dir=SHARED / "golden" / "nvembed-tiny")


@pytest.fixture(scope="module")
def perturbed(tiny, tmp_path_factory):
    """The tiny checkpoint with 1e-3 added to one weight (the final norm's first element, so every text feels it)."""
    from safetensors.numpy import load_file, save_file

    folder = tmp_path_factory.mktemp("probe-ckpt") / "perturbed"
    shutil.copytree(tiny, folder)
    weights = load_file(str(folder / "model.safetensors"))
    weights["embedding_model.norm.weight"][0] += np.float32(1e-3)
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


@pytest.fixture(scope="module")
def baseline(tiny, tmp_path_factory):
    """A baseline written through the real CLI, and the temp root whose embedding cache it must leave untouched."""
    tmp = tmp_path_factory.mktemp("probe-run")
    path = tmp / "tiny.safetensors"
    res = invoke(["write", str(path), "model=nv_embed_tiny", f"model.path={tiny}"], tmp, main=probe_main)
    assert res.returncode == 0, res.stderr
    assert f"wrote {path}: probe set v1, 261 texts x 64" in res.stdout
    return path, tmp


def test_written_baseline_records_what_made_it(baseline):
    from nvembed_eval.models.probe import load_probe_set, read_baseline

    path, tmp = baseline
    got = read_baseline(path)
    probes = load_probe_set()
    assert got.embeddings.shape == (len(probes.probes), 64) and np.isfinite(got.embeddings).all()
    assert got.probe_set_version == 1 and got.probe_set_sha256 == probes.sha256 and got.probe_ids == probes.ids
    assert got.identity["name"] == "nvembed-eval/NV-Embed-tiny" and got.identity["revision"].startswith("sha256:")
    assert got.identity["knobs"]["dtype"] == "float32"
    assert got.instruction_template == "Instruct: {instruction}\nQuery: "
    assert {"torch", "transformers", "tokenizers", "numpy", "python"} <= set(got.versions)
    assert got.device == "cpu" and got.batch_size == 32
    assert not (tmp / "embedding-cache").exists()  # the cache was bypassed, not merely unused


def test_recheck_passes_bit_for_bit(baseline, tiny):
    path, tmp = baseline
    res = invoke(["check", str(path), "model=nv_embed_tiny", f"model.path={tiny}"], tmp, main=probe_main)
    assert res.returncode == 0, res.stderr
    assert "PASS: 261/261 texts within tolerance; max abs diff 0.000e+00, min cosine 1.000000000" in res.stdout
    assert "package changes since the baseline: none" in res.stdout
    assert not (tmp / "embedding-cache").exists()


def test_one_weight_moved_by_1e3_fails_and_lists_the_worst_texts(baseline, perturbed):
    path, tmp = baseline
    args = ["check", str(path), "model=nv_embed_tiny", f"model.path={perturbed}", "--allow-other-model"]
    res = invoke([*args, "--worst", "5"], tmp, main=probe_main)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "note: comparing across models (revision" in res.stdout
    verdict = re.search(
        r"FAIL: (\d+)/261 texts beyond tolerance .*max abs diff ([0-9.e+-]+), .*tolerance 1\.0e-05", res.stdout
    )
    assert verdict, res.stdout
    assert int(verdict[1]) > 0 and 1e-5 < float(verdict[2]) < 1e-2  # measured: 2.8e-4 (docs/probes.md)
    rows = [line for line in res.stdout.splitlines() if line.endswith(" *")]
    assert len(rows) == 5  # the five worst, each marked beyond tolerance, largest first
    diffs = [float(re.search(r" (\d\.\d{3}e[+-]\d\d)  ", line)[1]) for line in rows]
    assert diffs == sorted(diffs, reverse=True) and diffs[0] == pytest.approx(float(verdict[2]), rel=1e-3)


def _main(args, capsys) -> tuple[int, list[str]]:
    from nvembed_eval.cli import probe_main as main

    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return exc.value.code, lines


def _rewrite(src, dst, *, meta=None, embeddings=None):
    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(src), framework="numpy") as handle:
        metadata, vectors = dict(handle.metadata()), handle.get_tensor("embeddings")
    save_file(
        {"embeddings": vectors if embeddings is None else embeddings(vectors)}, str(dst), {**metadata, **(meta or {})}
    )
    return dst


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "does not exist; write one with: nvembed-eval-probe write"),
        ("garbage", "is not a readable safetensors file"),
        ("other-version", "has no probe set v2 (it has: probes_v1.json)"),
        ("edited-set", "it was edited without a version bump"),
        ("shape", "holds embeddings of shape (260, 64) for 261 ids; probe set v1 has 261 texts"),
        ("not-a-baseline", "is not a nvembed-eval-probe-baseline/1 file"),
    ],
)
def test_unusable_baselines_exit_2_with_one_line_before_the_model_loads(case, message, baseline, tmp_path, capsys):
    path, _ = baseline
    bad = tmp_path / "bad.safetensors"
    if case == "garbage":
        bad.write_bytes(b"not a safetensors file at all")
    elif case == "other-version":
        _rewrite(path, bad, meta={"probe_set_version": "2"})
    elif case == "edited-set":
        _rewrite(path, bad, meta={"probe_set_sha256": "0" * 64})
    elif case == "shape":
        _rewrite(path, bad, embeddings=lambda v: np.ascontiguousarray(v[:-1]))
    elif case == "not-a-baseline":
        _rewrite(path, bad, meta={"format": "something-else"})
    # model.path points nowhere: reaching the model would fail differently, so the refusal provably comes first
    code, lines = _main(["check", bad, "model=nv_embed_tiny", f"model.path={tmp_path / 'no-model'}"], capsys)
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def test_another_model_is_refused_unless_allowed(baseline, perturbed, capsys):
    path, _ = baseline
    code, lines = _main(["check", path, "model=nv_embed_tiny", f"model.path={perturbed}"], capsys)
    assert code == 2 and len(lines) == 1
    assert "was written by another model (revision 'sha256:" in lines[0] and "--allow-other-model" in lines[0]


def test_other_width_is_refused_even_when_another_model_is_allowed(baseline, capsys):
    path, _ = baseline
    code, lines = _main(["check", path, "model=minilm", "--allow-other-model"], capsys)
    errors = [line for line in lines if line.startswith("error: ")]  # transformers' loading bar precedes it
    assert code == 2 and errors == lines[-1:] and "holds 64-d embeddings, the model gives 384-d" in lines[-1], lines


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["write", "{baseline}", "model=nv_embed_tiny"], "exists; pass --force to replace it"),
        (
            ["check", "{baseline}", "model=nv_embed_tiny", "--tolerance", "-1"],
            "expected a finite number >= 0, got '-1'",
        ),
        (
            ["check", "{baseline}", "model=nv_embed_tiny", "--tolerance", "inf"],
            "expected a finite number >= 0, got 'inf'",
        ),
        (
            ["check", "{baseline}", "model=nv_embed_tiny", "--tolerance", "nan"],
            "expected a finite number >= 0, got 'nan'",
        ),
        (["check", "{baseline}", "--worst", "-2"], "argument --worst: expected a whole number >= 0, got '-2'"),
        (["check", "{baseline}", "model=nv_embd_tiny"], "unknown model config <model=nv_embd_tiny>; did you mean"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, message, baseline, capsys):
    path, _ = baseline
    code, lines = _main([a.format(baseline=path) for a in args], capsys)
    assert code == 2 and len(lines) == 1 and message in lines[0], lines


@pytest.mark.parametrize("action", ["check", "write"])
def test_a_folder_as_the_baseline_is_named_as_one_before_the_model_loads(action, tmp_path, capsys):
    code, lines = _main(
        [action, tmp_path, "model=nv_embed_tiny", f"model.path={tmp_path / 'no-model'}", "--force"], capsys
    )
    assert code == 2 and len(lines) == 1, lines
    assert lines[0] == (
        f"error: probe baseline {tmp_path} is a folder; a baseline is a .safetensors file written by: "
        f"nvembed-eval-probe write {tmp_path / 'baseline.safetensors'} model=..."
    )


def test_missing_baseline_through_the_console_script(tmp_path):
    res = invoke(["check", str(tmp_path / "none.safetensors"), "model=nv_embed_tiny"], tmp_path, main=probe_main)
    assert res.returncode == 2 and res.stdout == ""
    assert res.error_line == res.stderr.strip() and "none.safetensors does not exist" in res.error_line
