"""The GPU machines the platform starts in a user's cloud account, and their prices: shared by
training (which machine fits a run) and deployments (which machine serves a model).

Plain tables and arithmetic: no network, no cloud SDK.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CloudProvider = Literal["aws", "gcp"]
GB = 1e9
TIMES = "\u00d7"  # the multiplication sign in "1\u00d7 NVIDIA A10G"


@dataclass(frozen=True, slots=True)
class GpuInstance:
    provider: CloudProvider
    instance_type: str
    gpu: str
    gpus: int
    gpu_memory_gb: float  # all GPUs together
    bf16_tflops: float  # dense (no sparsity) bf16 tensor-core peak, all GPUs together
    usd_per_hour: float  # on-demand list price, Linux
    region_note: str

    @property
    def memory_per_gpu_gb(self) -> float:
        return self.gpu_memory_gb / self.gpus

    @property
    def label(self) -> str:
        """How the page names it: "1x NVIDIA A10G (g5.xlarge)", with a multiplication sign."""
        return f"{self.gpus}{TIMES} {self.gpu} ({self.instance_type})"


_AWS_REGION = "AWS us-east-1 (N. Virginia), on-demand Linux list price"
_GCP_REGION = "Google Cloud us-central1 (Iowa), on-demand list price, GPUs included"

# Peak dense bf16 tensor throughput per GPU, from the vendors' datasheets:
#   A10G  70 TFLOPS. NVIDIA publishes no A10G datasheet; the A10's 125 (250 with sparsity)
#         does not carry over: AWS's variant has about half the tensor throughput (Baseten,
#         "NVIDIA A10 vs A10G for ML model inference", spec table).
#   L4    121 TFLOPS (NVIDIA L4 datasheet: 242 with sparsity).
#   L40S  362 TFLOPS (NVIDIA L40S datasheet: 362.05, 733 with sparsity).
#   A100  312 TFLOPS, 40 GB and 80 GB alike (NVIDIA A100 datasheet: 624 with sparsity).
# Prices are the providers' on-demand list prices as last checked in 2025 (AWS: after its
# June 2025 cut of P4d prices; p4d.24xlarge was $32.77 before). They change: update them
# from aws.amazon.com/ec2/pricing/on-demand and cloud.google.com/compute/gpus-pricing.
INSTANCES: tuple[GpuInstance, ...] = (
    GpuInstance("aws", "g5.xlarge", "NVIDIA A10G", 1, 24, 70, 1.006, _AWS_REGION),
    GpuInstance("aws", "g5.12xlarge", "NVIDIA A10G", 4, 96, 4 * 70, 5.672, _AWS_REGION),
    GpuInstance("aws", "g6e.xlarge", "NVIDIA L40S", 1, 48, 362, 1.861, _AWS_REGION),
    GpuInstance("aws", "p4d.24xlarge", "NVIDIA A100 40GB", 8, 320, 8 * 312, 21.96, _AWS_REGION),
    GpuInstance("gcp", "g2-standard-8", "NVIDIA L4", 1, 24, 121, 0.854, _GCP_REGION),
    GpuInstance("gcp", "a2-highgpu-1g", "NVIDIA A100 40GB", 1, 40, 312, 3.673, _GCP_REGION),
    GpuInstance("gcp", "a2-ultragpu-1g", "NVIDIA A100 80GB", 1, 80, 312, 5.069, _GCP_REGION),
    GpuInstance("gcp", "a2-highgpu-8g", "NVIDIA A100 40GB", 8, 320, 8 * 312, 29.387, _GCP_REGION),
)


# --- Serving ------------------------------------------------------------------------------------

# vLLM serves bf16 weights (2 bytes a parameter) and gives what is left of the share of GPU
# memory it may take (--gpu-memory-utilization, 0.9 by default) to the KV cache; the CUDA
# context, activations and graphs take about 2 GB a GPU besides. We ask for at least 3 GB of
# KV cache (about 24,000 tokens of context for an 8B model with grouped-query attention).
SERVING_MEMORY_SHARE = 0.9
SERVING_OVERHEAD_GB_PER_GPU = 2.0
SERVING_KV_CACHE_GB = 3.0


def serving_memory_gb(parameters: int) -> float:
    """GPU memory a model needs to be served by vLLM (all GPUs together, overheads aside)."""
    return parameters * 2 / GB + SERVING_KV_CACHE_GB


def fits_for_serving(parameters: int, instance: GpuInstance) -> bool:
    usable = instance.gpu_memory_gb * SERVING_MEMORY_SHARE
    usable -= SERVING_OVERHEAD_GB_PER_GPU * instance.gpus
    return serving_memory_gb(parameters) <= usable


def serving_instance(provider: str, parameters: int) -> GpuInstance | None:
    """The cheapest listed machine of `provider` that serves a model this size (several GPUs
    are used with tensor parallelism), or None when none is big enough."""
    fitting = [i for i in INSTANCES if i.provider == provider and fits_for_serving(parameters, i)]
    return min(fitting, key=lambda i: (i.usd_per_hour, i.gpus)) if fitting else None
