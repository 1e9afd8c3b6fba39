"""The profiling step's grouping: kernel names of the kinds H100/H200 profiles show, and a real profiled CPU pass."""

from __future__ import annotations

import pytest
import torch
from nvembed_profile import kernel_category, profile_kernels

GEMM, ATTENTION, FUSED = "GEMM", "attention", "fused (triton / inductor)"
ELEMENTWISE, COPY = "element-wise / norm / softmax", "copy / layout / indexing"
KERNELS = [
    ("nvjet_hsh_256x128_64x4_1x2_h_bz_coopA_NNT", GEMM),
    ("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x256x64_warpgroupsize2x1x1_execute_cublas", GEMM),
    (
        "void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<128, 128, 64, 4, false, false, "
        "cutlass::bfloat16_t>>(pytorch_flash::Flash_fwd_params)",
        ATTENTION,
    ),
    (
        "fmha_cutlassF_bf16_aligned_64x128_rf_sm80(PyTorchMemEffAttention::AttentionKernel<cutlass::bfloat16_t>)",
        ATTENTION,
    ),
    ("cudnn_generated_fused_mha_fprop_kernel", ATTENTION),
    ("triton_poi_fused_add_mul_rsqrt_0", FUSED),
    ("triton_red_fused__to_copy_add_mean_pow_1", FUSED),
    (
        "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<c10::BFloat16>, "
        "at::detail::Array<char*, 3> >(int, at::native::CUDAFunctor_add<c10::BFloat16>, at::detail::Array<char*, 3>)",
        ELEMENTWISE,
    ),
    (
        "void at::native::elementwise_kernel<128, 2, at::native::gpu_kernel_impl_nocast<"
        "at::native::direct_copy_kernel_cuda(at::TensorIteratorBase&)> >",
        COPY,
    ),
    ("void at::native::(anonymous namespace)::CatArrayBatchedCopy<OpaqueType<2u>, unsigned int, 3, 64, 64>", COPY),
    (
        "void at::native::(anonymous namespace)::cunn_SoftMaxForward<8, float, float, float, "
        "at::native::(anonymous namespace)::SoftMaxForwardEpilogue>",
        ELEMENTWISE,
    ),
    ("Memcpy HtoD (Pageable -> Device)", COPY),
    ("aten::addmm", GEMM),
    ("aten::_scaled_dot_product_flash_attention_for_cpu", ATTENTION),
    ("aten::rsqrt", ELEMENTWISE),
    ("ncclDevKernel_AllGather_RING_LL", "communication (NCCL)"),
    ("void cub::DeviceRadixSortOnesweepKernel<cub::DeviceRadixSortPolicy<long, long, unsigned int>>", "other"),
]


@pytest.mark.parametrize(("name", "category"), KERNELS)
def test_kernel_names_fall_into_their_category(name, category):
    assert kernel_category(name) == category


def test_a_profiled_cpu_pass_accounts_for_its_operator_time(tiny_encoder, texts):
    """On CPU the profile groups aten self times; the shares add up, and the model's matmuls and attention show."""
    prof = profile_kernels(lambda: tiny_encoder.encode(texts * 4), torch.device("cpu"))
    assert 0 < prof.busy_s <= prof.wall_s
    assert sum(prof.by_category.values()) == pytest.approx(prof.busy_s)
    assert sum(prof.share(c) for c in prof.by_category) == pytest.approx(100.0)
    assert prof.share("GEMM") > 0 and prof.share("attention") > 0
    assert {name for name, _, _ in prof.top} >= {"aten::mm", "aten::_scaled_dot_product_flash_attention_for_cpu"}
    table = prof.table(top_n=3)
    assert table.startswith("device busy ") and table.count("| aten::") == 0 and table.count("| `aten::") == 3
