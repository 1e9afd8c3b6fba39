"""The NV-Embed scripts run (tiny checkpoint, CPU) and the package stays importable without mteb/hydra/pandas."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import nvembed_bench as bm
import pytest
from nvembed_testlib import REPO

from nvembed_eval.models.nvembed.configuration_nvembed import NVEmbedConfig
from nvembed_eval.models.nvembed.tiny import build_random_model

# How the varlen variant fails on CPU: torch >= 2.10 has the module but no CPU kernel; older torch lacks the module.
VARLEN_CPU_ERROR = NotImplementedError if importlib.util.find_spec("torch.nn.attention.varlen") else ModuleNotFoundError


def test_gpu_modules_import_without_the_harness_stack():
    """scripts/gpu_check.py runs where only torch/safetensors/tokenizers/numpy exist."""
    code = (
        "import sys\n"
        "sys.path.insert(0, 'scripts')\n"
        "import nvembed_eval.models.nvembed.encoder_nvembed, nvembed_bench\n"
        "import nvembed_eval.models.nvembed.tiny, nvembed_eval.models.nvembed.distributed\n"
        "bad = [m for m in ('mteb', 'hydra', 'omegaconf', 'pandas', 'transformers', 'datasets') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_make_tiny_checkpoint_cli(tmp_path, golden_dir, capsys):
    import make_tiny_checkpoint

    out = tmp_path / "tiny"
    assert make_tiny_checkpoint.main([str(out), "--shards", "2", "--tokenizer-dir", str(golden_dir)]) == 0
    assert (out / "model.safetensors.index.json").is_file()
    assert make_tiny_checkpoint.main([str(out), "--tokenizer-dir", str(golden_dir)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_model_card_example_runs_on_the_tiny_checkpoint(tiny_dir, capsys):
    import check_model_card_example as card

    assert card.main(["--model", str(tiny_dir), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "local/nv_embed_tiny" in printed and printed.count("[") == 3  # a 2 x 2 matrix
    assert card.main(["--model", str(tiny_dir), "--device", "cpu", "--expect-card"]) == 1  # random weights
    assert "v2 card: [[87.43, 0.46], [0.97, 86.04]]; max deviation" in capsys.readouterr().out


def test_model_card_check_tolerance_and_each_cards_max_length(tiny_dir, capsys):
    """Within 0.05 of a card's matrix passes, beyond fails; each card runs at the max_length its example uses."""
    import check_model_card_example as card

    for name, (matrix, max_length) in card.CARDS.items():
        assert card.deviation_from_card(matrix + 0.04, name) == (pytest.approx(0.04), True)
        assert card.deviation_from_card(matrix - np.array([[0, 0], [0.06, 0]]), name) == (pytest.approx(0.06), False)
        assert card.main(["--model", str(tiny_dir), "--device", "cpu", "--card", name, "--expect-card"]) == 1
        printed = capsys.readouterr().out
        assert f"max_length {max_length})" in printed and f"{name} card: {matrix.tolist()}" in printed
    assert card.deviation_from_card(card.CARDS["v1"][0], "v2")[1] is False  # the two cards differ


def test_flop_count_of_the_full_model(golden_dir):
    """Per token, the backbone's matmuls are 2 x its non-embedding parameters; attention adds 4 T H d per layer."""
    cfg = NVEmbedConfig.from_json_file(golden_dir.parents[1] / "reference/nv_embed_v2_checkpoint/config.json")
    text = cfg.text_config
    backbone = text.num_hidden_layers * (4096 * 4096 * 2 + 2 * 4096 * 1024 + 3 * 4096 * 14336)
    assert bm.flops_per_text(cfg, 1, 0) == 2 * backbone + text.num_hidden_layers * 4 * 4096
    latent = 2 * (2 * 4096 * 32768) + 4 * 512 * 32768 + 2 * (4096 * 32768 + 16384 * 4096)
    assert bm.flops_per_text(cfg, 1, 1) - bm.flops_per_text(cfg, 1, 0) == latent
    assert bm.peak_bf16_flops("NVIDIA H100 80GB HBM3") == bm.peak_bf16_flops("NVIDIA H200") == 989.4e12
    assert bm.peak_bf16_flops("NVIDIA H100 PCIe") == 756e12 and bm.peak_bf16_flops("cpu") is None


def test_compare_paths_on_a_small_model(tiny_encoder, texts):
    model = build_random_model(tiny_encoder.config)
    rows, diffs = bm.compare_paths(
        model,
        tiny_encoder.tokenizer,
        texts,
        max_length=512,
        ref_batch_size=3,
        variants=("sdpa", "eager"),
        reference_kernels=("eager", "sdpa_mask"),
    )
    assert [r.name.split(" (")[0] for r in rows] == ["ours", "ours", "reference", "reference"]
    assert rows[1].name.startswith("ours (eager, sorted, token budget 16384)")
    assert len(diffs) == 3 and all(d <= 1e-5 for d in diffs.values())
    assert rows[0].tokens == rows[2].tokens > 0
    table = bm.format_table(rows, baseline=rows[-1])
    assert table.count("\n") == 5 and "1.00x" in table
    with pytest.raises(ValueError, match="expected <attn_implementation>"):
        bm.parse_variant("sdpa+fast")
    assert bm.parse_variant("varlen+compile") == ("varlen", True)


@pytest.mark.parametrize("script", ["bench_encode.py", "gpu_check.py", "check_model_card_example.py"])
def test_script_help(script):
    out = subprocess.run(
        [sys.executable, str(REPO / "scripts" / script), "--help"], capture_output=True, text=True, check=True
    )
    assert "usage" in out.stdout
    if script == "check_model_card_example.py":
        assert "cannot run in this project's offline CI" in " ".join(out.stdout.split())


def test_gpu_check_cpu_smoke(tmp_path, golden_dir, monkeypatch):
    """The one-shot GPU script, end to end on a small shape, so the lead's single GPU run is known to work."""
    import gpu_check

    monkeypatch.setenv("OUT", str(tmp_path))
    args = ["--cpu-smoke", "--n-texts", "4", "--long-tokens", "256", "--golden-cases", "4", "--assets", str(tmp_path)]
    assert gpu_check.main(args) == 0
    report = (tmp_path / "gpu_check.md").read_text()
    assert report.count("| PASS |") == 2 and "FAIL" not in report
    assert "ours" in report and "reference (eager" in report
    assert "| profile of sdpa, 4 docs | device busy " in report and "## Where the time goes: sdpa, 4 docs" in report


def test_gpu_check_names_each_row_by_exactly_one_variant():
    """Step 5 profiles the variant whose row was fastest; 'sdpa' must not also claim the 'sdpa, compiled' row."""
    variants = ["sdpa", "sdpa+compile", "varlen", "varlen+compile"]
    for variant in variants:
        attn, compiled = bm.parse_variant(variant)
        row = f"ours ({attn}{', compiled' if compiled else ''}, sorted, token budget 32768)"
        assert [v for v in variants if row.startswith(bm.variant_row_prefix(v))] == [variant]


def test_gpu_check_times_a_compiled_variant(tmp_path, golden_dir, monkeypatch):
    """The compiled path the GPU run will take (pre-check, untimed warm-up pass, timed pass), here through inductor's
    CPU backend on the tiny shape; its embeddings match eager sdpa's."""
    import gpu_check

    monkeypatch.setenv("OUT", str(tmp_path))
    args = ["--cpu-smoke", "--n-texts", "6", "--long-tokens", "128", "--golden-cases", "2", "--assets", str(tmp_path)]
    assert gpu_check.main([*args, "--variants", "sdpa,sdpa+compile"]) == 0
    report = (tmp_path / "gpu_check.md").read_text()
    assert "variants sdpa, sdpa+compile |" in report and "FAIL" not in report
    assert "| ours (sdpa, compiled, sorted, token budget 16384) | 6 |" in report
    diff = float(report.split("max abs diff of any row vs ours (sdpa) ")[1].split(" |")[0])
    assert diff <= 1e-5
    fastest = "sdpa+compile" if "fastest: ours (sdpa, compiled," in report else "sdpa"
    assert f"| profile of {fastest}, 6 docs |" in report  # step 5 profiles the row that won step 3


def test_gpu_check_reports_a_variant_that_cannot_run_and_keeps_the_rest(tiny_encoder, texts):
    """On CPU torch's varlen kernel does not exist (flash only): that variant becomes a FAIL row, sdpa stays."""
    import gpu_check

    model = build_random_model(tiny_encoder.config)
    report: list[str] = []
    assert gpu_check.working_variants(report, model, tiny_encoder.tokenizer, texts, ["sdpa", "varlen"]) == ["sdpa"]
    assert len(report) == 1 and report[0].startswith(f"| variant varlen | {VARLEN_CPU_ERROR.__name__}")
    assert "FAIL" in report[0]
    assert model.config.attn_implementation == "sdpa"
    assert gpu_check.throughput_variants("cpu", smoke=True) == ["sdpa"]


def test_compare_paths_reports_a_failing_path_and_keeps_the_others(tiny_encoder, texts):
    model = build_random_model(tiny_encoder.config)
    failures: dict[str, str] = {}
    rows, diffs = bm.compare_paths(
        model,
        tiny_encoder.tokenizer,
        texts,
        max_length=512,
        variants=("varlen", "sdpa"),  # varlen has no CPU kernel: its row is dropped, sdpa's becomes the first
        reference_kernels=("eager",),
        on_error=lambda name, exc: failures.setdefault(name, type(exc).__name__),
    )
    assert failures == {"ours (varlen, sorted, token budget 16384)": VARLEN_CPU_ERROR.__name__}
    assert [r.name for r in rows] == ["ours (sdpa, sorted, token budget 16384)", bm.REFERENCE_KERNELS["eager"]]
    assert list(diffs) == [bm.REFERENCE_KERNELS["eager"]] and diffs[bm.REFERENCE_KERNELS["eager"]] <= 1e-5
    assert model.config.attn_implementation == "sdpa"
    with pytest.raises(VARLEN_CPU_ERROR):
        bm.compare_paths(model, tiny_encoder.tokenizer, texts, max_length=512, variants=("varlen",))
