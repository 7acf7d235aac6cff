"""What the trainer offers, and what a run will need, take and cost: shown before the run.

A non-technical user picks a base model, a dataset and a goal; before anything starts we say
how much GPU memory that needs, which cloud instance fits it most cheaply, and about how long
and how much the run will be. Everything here is arithmetic over fixed tables: no network, no
database, no torch. The numbers are estimates with their assumptions spelt out, so the page can
show them next to the result rather than pretend to a precision we do not have.

Sizes are decimal gigabytes (1 GB = 10^9 bytes), the unit cloud providers and NVIDIA use for
GPU memory; the 10% headroom we keep on every GPU also absorbs the GB/GiB difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from services.common.bundled_model import MODEL_ID as BUNDLED_MODEL_ID
from services.common.cloud.machines import INSTANCES as INSTANCES
from services.common.cloud.machines import TIMES, CloudProvider
from services.common.cloud.machines import GpuInstance as GpuInstance
from services.common.errors import InvalidInput, NotFound
from services.trainer.datasets import Format as DatasetFormat

Method = Literal["full", "lora", "qlora"]
Provider = Literal["local", "aws", "gcp"]

METHODS: tuple[str, ...] = get_args(Method)
PROVIDERS: tuple[str, ...] = get_args(Provider)

GB = 1e9


# --- Base models ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BaseModel:
    id: str
    hub_id: str
    display_name: str
    parameters: int  # exact, summed from the tensor shapes in its config; embeddings included
    context_length: int  # max_position_embeddings in the model's config
    # The prompt format family the model was trained with, for people ("chatml", "llama3"...).
    chat_template: str
    # The value for axolotl's `chat_template:`, checked against the ChatTemplate enum of
    # axolotl 0.19.0. Each is axolotl's own copy of the model's template; "tokenizer_default"
    # (use the template inside the tokenizer) would also work for the instruct models.
    axolotl_chat_template: str
    good_for: str  # one plain sentence for someone choosing a model
    license: str
    gated: bool  # the hub wants the licence accepted (and a token) before it serves weights
    bundled: bool  # on this machine already, no hub needed (services/common/bundled_model.py)
    layers: int
    hidden_size: int

    @property
    def download_gb(self) -> float:
        """Size of the bf16 safetensors weights a cloud machine downloads (2 bytes/param)."""
        return self.parameters * 2 / GB


# Counts and shapes are from each model's config.json; the parameter counts are the sums of
# its tensor sizes (e.g. Llama 3 8B: 32 layers * 218,112,000 + 2 * 128,256 * 4,096 + 4,096).
CATALOGUE: dict[str, BaseModel] = {
    model.id: model
    for model in (
        BaseModel(
            id=BUNDLED_MODEL_ID,
            hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
            display_name="SmolLM2 135M Instruct",
            parameters=134_515_008,
            context_length=8192,
            chat_template="chatml",
            axolotl_chat_template="chatml",
            good_for=(
                "Trying things out: it is tiny and trains on this machine in minutes, "
                "but its answers stay simple."
            ),
            license="Apache-2.0",
            gated=False,
            bundled=True,
            layers=30,
            hidden_size=576,
        ),
        BaseModel(
            id="gemma-2b",
            hub_id="google/gemma-2b",
            display_name="Gemma 2B",
            parameters=2_506_172_416,
            context_length=8192,
            chat_template="gemma",
            axolotl_chat_template="gemma",
            good_for=(
                "A small general model from Google that is cheap to train on one GPU; "
                "good for a focused task such as one kind of question."
            ),
            license="Gemma terms of use",
            gated=True,
            bundled=False,
            layers=18,
            hidden_size=2048,
        ),
        BaseModel(
            id="mistral-7b-instruct-v0.3",
            hub_id="mistralai/Mistral-7B-Instruct-v0.3",
            display_name="Mistral 7B Instruct v0.3",
            parameters=7_248_023_552,
            context_length=32768,
            chat_template="mistral",
            # v0.3 uses Mistral's v3 (sentencepiece) tokenizer, not Tekken: axolotl's
            # "mistral_v3_tekken" is for Mistral NeMo and later.
            axolotl_chat_template="mistral_v2v3",
            good_for=(
                "A capable all-round assistant that reads long documents (32,000 tokens); "
                "a common choice for chat and writing."
            ),
            license="Apache-2.0",
            gated=True,  # Mistral asks for contact details before the download
            bundled=False,
            layers=32,
            hidden_size=4096,
        ),
        BaseModel(
            id="llama-3-8b-instruct",
            hub_id="meta-llama/Meta-Llama-3-8B-Instruct",
            display_name="Llama 3 8B Instruct",
            parameters=8_030_261_248,
            context_length=8192,
            chat_template="llama3",
            axolotl_chat_template="llama3",
            good_for="Meta's popular assistant: good at everyday chat and following instructions.",
            license="Llama 3 community licence",
            gated=True,
            bundled=False,
            layers=32,
            hidden_size=4096,
        ),
        BaseModel(
            id="qwen2.5-7b-instruct",
            hub_id="Qwen/Qwen2.5-7B-Instruct",
            display_name="Qwen2.5 7B Instruct",
            parameters=7_615_616_512,
            context_length=32768,
            chat_template="chatml",
            # ChatML plus Qwen's default system prompt and tool calls.
            axolotl_chat_template="qwen_25",
            good_for="Strong at maths, code and many languages; a good choice for reasoning tasks.",
            license="Apache-2.0",
            gated=False,
            bundled=False,
            layers=28,
            hidden_size=3584,
        ),
    )
}


def get_base_model(model_id: str) -> BaseModel:
    """The catalogue entry for `model_id`; NotFound (`unknown_base_model`) names the choices."""
    model = CATALOGUE.get(model_id)
    if model is None:
        raise NotFound(
            "unknown_base_model",
            f"There is no base model {model_id!r}. Choose one of: {', '.join(CATALOGUE)}.",
        )
    return model


# --- GPU memory -------------------------------------------------------------------------------

# Full fine-tuning with bf16 mixed precision and AdamW keeps, per parameter: bf16 weights (2)
# + bf16 gradients (2) + an fp32 master copy of the weights (4) + Adam's two fp32 moments
# (4 + 4) = 16 bytes. This is the ZeRO paper's accounting (Rajbhandari et al. 2020, §3.1).
FULL_BYTES_PER_PARAM = 16.0
# LoRA freezes the base model in bf16: weights only, no gradients or optimizer state.
LORA_BASE_BYTES_PER_PARAM = 2.0
# QLoRA stores the frozen base in 4-bit NF4 (0.5 bytes) plus its quantisation constants
# (~0.02 with double quantisation, Dettmers et al. 2023) and a few tensors axolotl leaves in
# bf16 (norms, and for some models the embeddings): 0.55 on average.
QLORA_BASE_BYTES_PER_PARAM = 0.55
# The adapters are trained like a small full model: 16 bytes per adapter parameter.
ADAPTER_BYTES_PER_PARAM = 16.0
# The adapter the trainer configures: rank 16 on every linear layer of each block.
LORA_RANK = 16
LORA_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# With gradient checkpointing only each layer's input survives the forward pass:
# sequence * batch * hidden * layers * 2 bytes (bf16). The factor 3 adds what exists beside
# it at the peak of the backward pass: the one layer being recomputed (~34·s·b·h bytes with
# flash attention, Korthikanti et al. 2022, about half the stored inputs once spread over
# 30-ish layers) and the fp32 logits and their gradient (s·b·vocabulary·8 bytes, as much as
# the stored inputs again for a 128k vocabulary). Cross-checked against the usual figures for
# 7-8B models at 2,048 tokens: full ≈ 130 GB, LoRA ≈ 16-22 GB, QLoRA ≈ 6-10 GB.
ACTIVATION_FACTOR = 3.0
# The CUDA context, cuBLAS/flash-attention workspaces and allocator fragmentation, per GPU.
CUDA_OVERHEAD_GB = 1.5
# Plan to fill at most 90% of a GPU: allocator spikes and uneven batches need the rest.
HEADROOM = 0.9


def lora_adapter_parameters(model: BaseModel) -> int:
    """Trainable adapter parameters: about r * 2 * hidden per targeted linear layer.

    Exactly it is r * (inputs + outputs) per layer; the MLP layers are wider than `hidden`,
    so this undercounts by about a third, which is a few hundred MB at most for 8B models.
    """
    return LORA_RANK * 2 * model.hidden_size * len(LORA_TARGET_MODULES) * model.layers


def _state_bytes(model: BaseModel, method: Method) -> float:
    """Weights, gradients and optimizer state: what ZeRO-3 would split between GPUs."""
    if method == "full":
        return model.parameters * FULL_BYTES_PER_PARAM
    base = LORA_BASE_BYTES_PER_PARAM if method == "lora" else QLORA_BASE_BYTES_PER_PARAM
    return model.parameters * base + lora_adapter_parameters(model) * ADAPTER_BYTES_PER_PARAM


def _activation_bytes(model: BaseModel, sequence_len: int, micro_batch_size: int) -> float:
    stored = sequence_len * micro_batch_size * model.hidden_size * model.layers * 2
    return stored * ACTIVATION_FACTOR


def _check_shape(model: BaseModel, method: str, sequence_len: int, micro_batch_size: int) -> None:
    if method not in METHODS:
        raise InvalidInput(
            "unknown_method", f"Unknown training method {method!r}; use {', '.join(METHODS)}."
        )
    if micro_batch_size < 1:
        raise InvalidInput("invalid_micro_batch_size", "The micro batch size must be at least 1.")
    if not 1 <= sequence_len <= model.context_length:
        raise InvalidInput(
            "invalid_sequence_len",
            f"The sequence length must be between 1 and {model.context_length:,} tokens "
            f"for {model.display_name}.",
        )


def memory_gb(
    model: BaseModel, method: Method, *, sequence_len: int, micro_batch_size: int
) -> float:
    """GPU memory one GPU needs to train `model` this way, in GB (rounded to 0.1).

    state (16 / 2 / 0.55 bytes per parameter for full / LoRA / QLoRA, plus 16 bytes per
    adapter parameter) + activations (with gradient checkpointing) + 1.5 GB CUDA overhead.
    See the constants above for where each term comes from.
    """
    _check_shape(model, method, sequence_len, micro_batch_size)
    total = _state_bytes(model, method) + _activation_bytes(model, sequence_len, micro_batch_size)
    return round(total / GB + CUDA_OVERHEAD_GB, 1)


# --- Cloud instances --------------------------------------------------------------------------

# The machines and their prices are shared with deployments: services/common/cloud/machines.py.


def get_instance(provider: CloudProvider, instance_type: str) -> GpuInstance:
    for instance in INSTANCES:
        if instance.provider == provider and instance.instance_type == instance_type:
            return instance
    raise InvalidInput(
        "unknown_instance_type",
        f"{instance_type!r} is not a {provider.upper()} machine the platform knows; choose one "
        "of: " + ", ".join(i.instance_type for i in INSTANCES if i.provider == provider) + ".",
    )


def needs_sharding(instance: GpuInstance, method: Method) -> bool:
    """Whether the run must split the model across the instance's GPUs (DeepSpeed ZeRO-3).

    We only plan multi-GPU full fine-tuning that way; LoRA and QLoRA keep a whole copy of the
    model on each GPU (plain data parallelism), which always fits where one GPU of the same
    kind would. The Axolotl config for such a run must enable ZeRO-3, or it will not fit.
    """
    return method == "full" and instance.gpus > 1


def _memory_per_gpu_gb(
    model: BaseModel,
    method: Method,
    instance: GpuInstance,
    sequence_len: int,
    micro_batch_size: int,
) -> float:
    state = _state_bytes(model, method)
    if needs_sharding(instance, method):
        state /= instance.gpus
    activations = _activation_bytes(model, sequence_len, micro_batch_size)
    return (state + activations) / GB + CUDA_OVERHEAD_GB


def fits(
    model: BaseModel,
    method: Method,
    instance: GpuInstance,
    sequence_len: int,
    micro_batch_size: int,
) -> bool:
    """Whether the run fits in the instance's GPU memory, with headroom."""
    need = _memory_per_gpu_gb(model, method, instance, sequence_len, micro_batch_size)
    return need <= instance.memory_per_gpu_gb * HEADROOM


# --- Time ---------------------------------------------------------------------------------------

# Training compute per token: ≈ 6·N for full fine-tuning (2·N forward, 4·N backward: gradients
# for activations and for weights; Kaplan et al. 2020, "Scaling laws", §2.1) and ≈ 4·N with
# LoRA/QLoRA, where the frozen weights need no weight gradients (the adapters' own FLOPs are
# negligible). Attention's extra FLOPs (~7% for 8B models at 2,048 tokens) are left out.
FLOPS_PER_PARAM_TOKEN: dict[str, float] = {"full": 6.0, "lora": 4.0, "qlora": 4.0}
# QLoRA dequantises the 4-bit weights on every forward and backward pass: about 30% slower
# than LoRA on the same GPU (the QLoRA paper and axolotl/unsloth benchmarks put it at 20-40%).
QLORA_SLOWDOWN = 1.3
# Model FLOPs utilisation: the share of the GPU's peak that goes into the 6·N / 4·N above.
# Well-tuned fine-tuning with flash attention and sample packing reaches 35-45% on one GPU;
# gradient checkpointing's recomputation is part of what is lost. We plan with 35%.
GPU_MFU = 0.35
# Several GPUs also spend time exchanging gradients (and parameters, with ZeRO-3).
MULTI_GPU_EFFICIENCY = 0.9

# Measured by the platform on this machine (2 CPU cores): SmolLM2-135M, LoRA, micro batch 2
# x 256 tokens, ~2 s a step. Other models are scaled from it as tokens/s ∝ 1/parameters.
MEASURED_LOCAL_TOKENS_PER_SECOND = 256.0
MEASURED_LOCAL_PARAMETERS = CATALOGUE[BUNDLED_MODEL_ID].parameters
MEASURED_LOCAL_METHOD: Method = "lora"

# Fixed parts of every run. A cloud machine takes ~10 min to boot and install Axolotl; it
# downloads the weights from the hub at ~0.2 GB/s (what a single hub download typically
# sustains in a cloud region; the bundled model needs no download on this machine); the
# evaluation after training takes ~5 min.
CLOUD_SETUP_HOURS = 10 / 60
DOWNLOAD_GB_PER_SECOND = 0.2
EVALUATION_HOURS = 5 / 60


def _flops_per_token(model: BaseModel, method: Method) -> float:
    flops = FLOPS_PER_PARAM_TOKEN[method] * model.parameters
    return flops * QLORA_SLOWDOWN if method == "qlora" else flops


def _gpu_tokens_per_second(model: BaseModel, method: Method, instance: GpuInstance) -> float:
    effective = instance.bf16_tflops * 1e12 * GPU_MFU
    if instance.gpus > 1:
        effective *= MULTI_GPU_EFFICIENCY
    return effective / _flops_per_token(model, method)


def _local_tokens_per_second(model: BaseModel, method: Method) -> float:
    """The measured CPU speed, scaled by compute per token (model size and method)."""
    measured_flops = FLOPS_PER_PARAM_TOKEN[MEASURED_LOCAL_METHOD] * MEASURED_LOCAL_PARAMETERS
    return MEASURED_LOCAL_TOKENS_PER_SECOND * measured_flops / _flops_per_token(model, method)


def _download_hours(model: BaseModel) -> float:
    return model.download_gb / DOWNLOAD_GB_PER_SECOND / 3600


def _cloud_run_hours(model: BaseModel, method: Method, instance: GpuInstance, tokens: int) -> float:
    training = tokens / _gpu_tokens_per_second(model, method, instance) / 3600
    return training + CLOUD_SETUP_HOURS + _download_hours(model) + EVALUATION_HOURS


def recommend_instance(
    model: BaseModel,
    method: Method,
    provider: CloudProvider,
    *,
    sequence_len: int,
    micro_batch_size: int,
    tokens: int | None = None,
) -> GpuInstance | None:
    """The cheapest `provider` instance with room for this run, or None if none has room.

    Cheapest means the lowest price per hour; given the run's `tokens` (as `estimate` does),
    the lowest price for the whole run, so a faster GPU wins when it finishes early enough
    to cost less. None means even the 8-GPU machines are too small: choose LoRA or QLoRA, a
    smaller model or a shorter sequence.
    """
    if provider not in ("aws", "gcp"):
        raise InvalidInput(
            "unknown_provider", f"No GPU instances for {provider!r}; use aws or gcp."
        )
    _check_shape(model, method, sequence_len, micro_batch_size)
    fitting = [
        instance
        for instance in INSTANCES
        if instance.provider == provider
        and fits(model, method, instance, sequence_len, micro_batch_size)
    ]
    if not fitting:
        return None
    if tokens is None:
        return min(fitting, key=lambda i: (i.usd_per_hour, -i.bf16_tflops))
    return min(
        fitting,
        key=lambda i: (_cloud_run_hours(model, method, i, tokens) * i.usd_per_hour, i.usd_per_hour),
    )


# --- Estimates ----------------------------------------------------------------------------------


def _duration(hours: float) -> str:
    """Hours as a person says them: "12 min", "1 h 20 min", "14 h", "3 days"."""
    minutes = hours * 60
    if round(minutes) < 60:
        return f"{max(1, round(minutes))} min"
    if hours < 10:
        whole_hours, rest = divmod(round(minutes / 5) * 5, 60)
        return f"{whole_hours} h {rest} min" if rest else f"{whole_hours} h"
    if hours < 48:
        return f"{round(hours)} h"
    return _days(hours)


def _short_duration(hours: float) -> str:
    """Like `_duration`, but a few seconds read "under a minute" rather than "1 min"."""
    return "under a minute" if hours * 60 < 0.5 else _duration(hours)


def _speed(tokens_per_second: float) -> str:
    return f"{tokens_per_second:,.0f}" if tokens_per_second >= 10 else f"{tokens_per_second:.1f}"


def _days(hours: float) -> str:
    days = max(1, round(hours / 24))
    return "1 day" if days == 1 else f"{days} days"


def _usd(amount: float) -> str:
    if amount < 10:
        return f"${max(amount, 0.01):.2f}"
    return f"${round(amount):,}"


_METHOD_NAMES = {"full": "Full fine-tuning", "lora": "LoRA", "qlora": "QLoRA"}


@dataclass(frozen=True, slots=True)
class Estimate:
    instance: GpuInstance | None  # None for local runs, and when no instance has room
    memory_gb: float  # GPU memory the run needs on one GPU (unsharded)
    fits: bool
    tokens: int  # tokens trained on: dataset tokens * epochs
    hours: float  # the whole run, fixed overheads included; 0 when nothing fits
    usd: float | None  # None for local runs and when nothing fits
    assumptions: list[str]  # plain sentences, shown beside the estimate
    warning: str | None
    training_hours: float  # the training steps alone, without the fixed overheads

    def summary(self) -> str:
        """One sentence for the page: "About 1 h 20 min on 1x NVIDIA A10G (g5.xlarge), about $1.35."

        (with a multiplication sign for the "x"), or the warning when nothing fits.
        """
        if not self.fits and self.warning:
            return self.warning
        where = self.instance.label if self.instance else "this machine"
        sentence = f"About {_duration(self.hours)} on {where}"
        if self.usd is not None:
            sentence += f", about {_usd(self.usd)}"
        return sentence + "."


def _too_big_warning(model: BaseModel, method: Method, provider: str, need: float) -> str:
    advice = {
        "full": "choose LoRA or QLoRA",
        "lora": "choose QLoRA",
        "qlora": "choose a smaller model",
    }[method]
    return (
        f"{_METHOD_NAMES[method]} of {model.display_name} needs about {need:.0f} GB of GPU "
        f"memory, more than any {provider.upper()} machine we offer; {advice} or a shorter "
        "sequence length."
    )


def estimate(
    model: BaseModel,
    method: Method,
    *,
    provider: Provider,
    dataset_tokens: int,
    epochs: float,
    sequence_len: int,
    micro_batch_size: int,
    local_tokens_per_second: float | None = None,
    local_memory_gb: float | None = None,
) -> Estimate:
    """Memory, machine, time and price of one training run, before it starts.

    For `local`, pass the measured `local_tokens_per_second` when there is one; otherwise the
    speed is scaled from the platform's CPU measurement. `local_memory_gb` (the machine's
    memory) lets the estimate say whether the run fits; without it, that is not checked.
    """
    if provider not in PROVIDERS:
        raise InvalidInput(
            "unknown_provider", f"Unknown compute {provider!r}; use local, aws or gcp."
        )
    if dataset_tokens < 1:
        raise InvalidInput("invalid_dataset_tokens", "The dataset has no tokens to train on.")
    if not epochs > 0:
        raise InvalidInput("invalid_epochs", "The number of epochs must be more than 0.")
    if local_tokens_per_second is not None and not local_tokens_per_second > 0:
        raise InvalidInput("invalid_tokens_per_second", "The measured speed must be above 0.")
    need = memory_gb(model, method, sequence_len=sequence_len, micro_batch_size=micro_batch_size)
    tokens = round(dataset_tokens * epochs)
    assumptions = [
        f"{tokens:,} tokens: {dataset_tokens:,} in the dataset {TIMES} {epochs:g} "
        f"epoch{'' if epochs == 1 else 's'}.",
        f"{_METHOD_NAMES[method]} needs about {need:.1f} GB of memory at {sequence_len:,} "
        f"tokens {TIMES} micro batch {micro_batch_size} (with gradient checkpointing).",
    ]
    if method == "qlora":
        assumptions.append(
            "QLoRA runs about 30% slower than LoRA: it unpacks the 4-bit weights at every step."
        )
    if provider == "local":
        return _local_estimate(
            model, method, need, tokens, assumptions, local_tokens_per_second, local_memory_gb
        )

    instance = recommend_instance(
        model,
        method,
        provider,
        sequence_len=sequence_len,
        micro_batch_size=micro_batch_size,
        tokens=tokens,
    )
    if instance is None:
        warning = _too_big_warning(model, method, provider, need)
        return Estimate(None, need, False, tokens, 0.0, None, assumptions, warning, 0.0)
    training = tokens / _gpu_tokens_per_second(model, method, instance) / 3600
    hours = training + CLOUD_SETUP_HOURS + _download_hours(model) + EVALUATION_HOURS
    assumptions += [
        f"The GPUs reach {GPU_MFU:.0%} of their peak speed, typical for fine-tuning.",
        f"Includes about 10 min to start the machine and install Axolotl, "
        f"{_short_duration(_download_hours(model))} to download {model.download_gb:.1f} GB of "
        "weights and 5 min to evaluate.",
        f"${instance.usd_per_hour:.2f} an hour: {instance.region_note}; your prices may differ.",
    ]
    if needs_sharding(instance, method):
        assumptions.append(
            f"The model is split across the {instance.gpus} GPUs with DeepSpeed ZeRO-3, so "
            "each holds only its share of the weights and optimizer state."
        )
    usd = round(hours * instance.usd_per_hour, 2)
    return Estimate(instance, need, True, tokens, hours, usd, assumptions, None, training)


def _local_estimate(
    model: BaseModel,
    method: Method,
    need: float,
    tokens: int,
    assumptions: list[str],
    measured: float | None,
    local_memory_gb: float | None,
) -> Estimate:
    if measured is not None:
        speed = measured
        assumptions.append(f"Speed measured on this machine: {_speed(speed)} tokens a second.")
    else:
        speed = _local_tokens_per_second(model, method)
        assumptions.append(
            "Speed scaled from a measurement on this machine's CPU "
            f"({MEASURED_LOCAL_TOKENS_PER_SECOND:.0f} tokens a second for SmolLM2-135M with "
            f"LoRA), assuming it falls in proportion to model size: about {_speed(speed)} tokens "
            "a second."
        )
    training = tokens / speed / 3600
    download = 0.0 if model.bundled else _download_hours(model)
    hours = training + download + EVALUATION_HOURS
    assumptions.append(
        "Includes about 5 min to evaluate"
        + (f" and {_short_duration(download)} to download the weights." if download else ".")
        + " No price: it runs on your own machine."
    )
    warnings = []
    fits = True
    if local_memory_gb is None:
        assumptions.append("Whether it fits in this machine's memory is not checked here.")
    elif need > local_memory_gb * HEADROOM:
        fits = False
        warnings.append(
            f"This needs about {need:.0f} GB of memory and this machine has "
            f"{local_memory_gb:.0f} GB; choose QLoRA, a smaller model or a cloud GPU."
        )
    if hours > 24:
        device = "this machine" if measured is not None else "this machine's CPU"
        warnings.append(f"This would take about {_days(hours)} on {device}; choose a cloud GPU.")
    warning = " ".join(warnings) or None
    return Estimate(None, need, fits, tokens, hours, None, assumptions, warning, training)


# --- Suggested datasets ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SuggestedDataset:
    hub_id: str
    format: DatasetFormat
    rows: int  # approximate, in the split we train on
    licence: str
    good_for: str  # one plain sentence
    # axolotl's dataset `type:`, checked against axolotl 0.19.0's prompt strategies.
    axolotl_type: str
    subset: str | None = None  # the hub "config name", when the dataset has several
    split: str = "train"
    needs_hub: bool = True  # loaded with `datasets` on compute that can reach the hub


def get_suggested_dataset(hub_id: str) -> SuggestedDataset:
    for suggested in SUGGESTED_DATASETS:
        if suggested.hub_id == hub_id:
            return suggested
    raise InvalidInput(
        "unknown_hub_dataset",
        f"{hub_id!r} is not one of the suggested datasets: "
        + ", ".join(s.hub_id for s in SUGGESTED_DATASETS)
        + ". Upload other data as a dataset of your own.",
    )


SUGGESTED_DATASETS: list[SuggestedDataset] = [
    SuggestedDataset(
        hub_id="TIGER-Lab/MathInstruct",
        format="alpaca",  # instruction / output, no input column
        rows=262_000,
        # MIT for the collection; some sources carry their own terms (Camel-Math: CC BY-NC 4.0).
        licence="MIT (some parts non-commercial)",
        good_for="Teaching a model to solve maths problems step by step.",
        axolotl_type="alpaca",
    ),
    SuggestedDataset(
        hub_id="akjindal53244/Arithmo-Data",
        format="alpaca",  # question / answer pairs
        rows=540_000,
        licence="Apache-2.0",
        good_for="A larger maths set (MathInstruct, MetaMathQA and more) for stronger maths.",
        # alpaca_chat.load_qa reads `question` and `answer` columns into the alpaca prompt.
        axolotl_type="alpaca_chat.load_qa",
    ),
    SuggestedDataset(
        hub_id="yahma/alpaca-cleaned",
        format="alpaca",
        rows=52_000,
        licence="CC BY 4.0",
        good_for="Teaching a model to follow everyday instructions.",
        axolotl_type="alpaca",
    ),
    SuggestedDataset(
        hub_id="HuggingFaceH4/ultrachat_200k",
        format="chat",  # `messages`: lists of {role, content}
        rows=208_000,
        licence="MIT",
        good_for="Making a model a better conversational assistant over several turns.",
        axolotl_type="chat_template",
        split="train_sft",
    ),
    SuggestedDataset(
        hub_id="Intel/orca_dpo_pairs",
        format="preference",  # system, question, chosen, rejected
        rows=12_900,
        licence="Apache-2.0",
        good_for="Teaching a tuned model which of two answers people prefer (DPO).",
        # A DPO strategy (`rl: dpo`) that writes the prompt in ChatML; for models with another
        # template, axolotl has `llama3.intel` too. ORPO needs messages-style rows instead.
        axolotl_type="chatml.intel",
    ),
    SuggestedDataset(
        hub_id="openai/gsm8k",
        format="alpaca",  # question / answer pairs
        rows=7_473,
        licence="MIT",
        good_for="A small set of school maths word problems: quick to train, easy to check.",
        axolotl_type="alpaca_chat.load_qa",
        subset="main",
    ),
]
