"""What a local server serves: a base model folder on this machine, or a fine-tuned model
version of the owner (its merged model, or its LoRA adapter), downloaded once from the
object store and unpacked into a cache."""

from __future__ import annotations

import fcntl
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.common.bundled_model import MODEL_ID as BUNDLED_MODEL_ID
from services.common.bundled_model import ensure_hf_model
from services.common.errors import InvalidInput, NotFound

COMPLETE_MARKER = ".forgeline-complete"
Progress = Callable[[str], None]


def base_model_dir(models_dir: Path, model_id: str, progress: Progress) -> Path:
    """The Hugging Face folder of a catalogue model on this machine."""
    if model_id == BUNDLED_MODEL_ID:
        return ensure_hf_model(models_dir, progress=progress)
    folder = models_dir / model_id
    if (folder / "config.json").is_file():
        return folder
    raise InvalidInput(
        "model_not_available_locally",
        f"The weights of {model_id!r} are not on this machine; deploy it to a cloud target, "
        f"or deploy {BUNDLED_MODEL_ID!r}.",
    )


def unpack(archive: Path, target: Path, required: str = "config.json") -> Path:
    """Extract a model archive into `target`, whole or not at all (safe paths only); it
    must hold `required` (a model's config.json, an adapter's adapter_config.json)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    try:
        with tarfile.open(archive) as packed:
            # The "data" filter refuses absolute paths, '..', links out of the folder and
            # device files.
            packed.extractall(staging, filter="data")
        if not (staging / required).is_file():
            raise InvalidInput(
                "model_archive_invalid", f"The model version's archive holds no {required}."
            )
        staging.chmod(0o755)
        (staging / COMPLETE_MARKER).write_text(archive.name)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def model_version_dir(cache_dir: Path, version: Any, s3: Any, progress: Progress) -> Path:
    """The merged model of a version (a trainer `ModelVersion` message), cached by id."""
    if not version.merged_prefix:
        raise NotFound("model_version_not_found", "This model version has no merged model.")
    return _cached(cache_dir, version, version.merged_prefix, "model", "config.json", s3, progress)


def adapter_version_dir(cache_dir: Path, version: Any, s3: Any, progress: Progress) -> Path:
    """The LoRA adapter of a version (PEFT files: adapter_config.json and weights)."""
    if not version.adapter_prefix:
        raise InvalidInput(
            "model_version_has_no_adapter", "This model version has no LoRA adapter."
        )
    return _cached(
        cache_dir, version, version.adapter_prefix, "adapter", "adapter_config.json", s3, progress
    )


def _cached(
    cache_dir: Path, version: Any, key: str, kind: str, required: str, s3: Any,
    progress: Progress,
) -> Path:  # fmt: skip
    """`cache_dir/<version id>/<kind>`, downloaded and unpacked once (under a file lock, so
    two starts of one version do not both download it)."""
    target: Path = cache_dir / str(version.id) / kind
    if (target / COMPLETE_MARKER).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / COMPLETE_MARKER).exists():
            return target
        archive = target.parent / f"{kind}.tar.gz"
        progress(f"downloading {key} from the object store")
        s3.download_file(version.bucket, key, str(archive))
        progress(f"unpacking the {kind}")
        try:
            return unpack(archive, target, required)
        finally:
            archive.unlink(missing_ok=True)
