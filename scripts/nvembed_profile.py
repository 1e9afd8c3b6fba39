"""Where encoding time goes: torch.profiler kernel times grouped into a few categories.

The GPU goals (share of the bf16 roofline) are decided by how much device time is not GEMM, and by how long the
device sits idle between kernels. One profiled pass answers both, so a single lent GPU run can say what to fix next.
On CPU the same grouping runs over aten operators (self time), which keeps the code path testable here.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

# First match wins. CUDA kernel names (cuBLAS/CUTLASS, flash/cuDNN attention, inductor's Triton, eager ATen) and
# CPU aten operator names are both covered.
CATEGORIES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("communication (NCCL)", re.compile(r"nccl", re.I)),
    ("attention", re.compile(r"flash|fmha|_mha|attention|scaled_dot_product", re.I)),
    ("GEMM", re.compile(r"gemm|nvjet|xmma|cutlass|cublas|aten::(?:mm|addmm|bmm|baddbmm|_addmm_activation)$", re.I)),
    ("fused (triton / inductor)", re.compile(r"^triton_|cpp_fused|graph_\d+_|CompiledFunction", re.I)),
    (
        "copy / layout / indexing",
        re.compile(r"copy|memcpy|memset|CatArray|aten::cat$|index|gather|scatter|roll|clone", re.I),
    ),
    ("element-wise / norm / softmax", re.compile(r"elementwise|reduce|softmax|norm|aten::", re.I)),
)
OTHER = "other"


def kernel_category(name: str) -> str:
    """The category a CUDA kernel or CPU aten operator belongs to."""
    for category, pattern in CATEGORIES:
        if pattern.search(name):
            return category
    return OTHER


@dataclass
class KernelProfile:
    """Device (or CPU operator) time by category, the busiest kernels, and how busy the device was."""

    wall_s: float
    busy_s: float  # sum of kernel (CPU: operator self) times
    by_category: dict[str, float] = field(default_factory=dict)  # seconds
    top: list[tuple[str, float, int]] = field(default_factory=list)  # (name, seconds, calls)

    @property
    def busy_pct(self) -> float:
        return 100.0 * self.busy_s / self.wall_s if self.wall_s else 0.0

    def share(self, category: str) -> float:
        return 100.0 * self.by_category.get(category, 0.0) / self.busy_s if self.busy_s else 0.0

    def table(self, top_n: int = 8) -> str:
        lines = [
            f"device busy {self.busy_s:.2f} s of {self.wall_s:.2f} s wall ({self.busy_pct:.1f} %)",
            "",
            "| category | seconds | share of busy time |",
            "|---|---:|---:|",
        ]
        for category, seconds in sorted(self.by_category.items(), key=lambda kv: -kv[1]):
            lines.append(f"| {category} | {seconds:.3f} | {self.share(category):.1f} % |")
        lines += ["", "| kernel | category | seconds | calls |", "|---|---|---:|---:|"]
        for name, seconds, calls in self.top[:top_n]:
            lines.append(f"| `{name[:90]}` | {kernel_category(name)} | {seconds:.3f} | {calls} |")
        return "\n".join(lines)


def profile_kernels(run: Callable[[], object], device: torch.device) -> KernelProfile:
    """Run `run()` once under torch.profiler and group its kernel (CUDA) or operator self (CPU) times."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    cuda = device.type == "cuda"
    activity = ProfilerActivity.CUDA if cuda else ProfilerActivity.CPU
    if cuda:
        torch.cuda.synchronize(device)
    with profile(activities=[activity]) as prof:
        start = time.perf_counter()
        run()
        if cuda:
            torch.cuda.synchronize(device)
        wall = time.perf_counter() - start

    totals: dict[str, tuple[float, int]] = {}
    for event in prof.key_averages():
        if cuda:
            if event.device_type != DeviceType.CUDA:
                continue
            micros = event.self_device_time_total
        else:
            if not event.key.startswith("aten::"):
                continue  # python-level and profiler bookkeeping ranges; their work is in aten self times
            micros = event.self_cpu_time_total
        if micros > 0:
            seconds, calls = totals.get(event.key, (0.0, 0))
            totals[event.key] = (seconds + micros / 1e6, calls + event.count)

    result = KernelProfile(wall_s=wall, busy_s=sum(s for s, _ in totals.values()))
    for name, (seconds, _) in totals.items():
        category = kernel_category(name)
        result.by_category[category] = result.by_category.get(category, 0.0) + seconds
    result.top = sorted(((n, s, c) for n, (s, c) in totals.items()), key=lambda row: -row[1])
    return result
