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

GiB = 1024**3
# A model archive comes from a training machine, which runs what the job's owner gave it:
# it is unpacked as untrusted. Bounds: the largest open models' weights fit in 1 TiB, and
# more members than any model folder has (sharded weights are tens or hundreds of files).
MAX_ARCHIVE_BYTES = 1024 * GiB
MAX_ARCHIVE_MEMBERS = 10_000
# Left free on the disk, so that a large model cannot fill it for everything else.
DISK_RESERVE_BYTES = 2 * GiB


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


def unpack(
    archive: Path,
    target: Path,
    required: str = "config.json",
    *,
    max_bytes: int = MAX_ARCHIVE_BYTES,
    max_members: int = MAX_ARCHIVE_MEMBERS,
) -> Path:
    """Extract a model archive into `target`, whole or not at all (safe paths only); it
    must hold `required` (a model's config.json, an adapter's adapter_config.json).

    Members are checked one by one as the stream reaches them, before any of their bytes is
    written: the total of the sizes their headers declare (which is exactly what tar writes)
    stays within `max_bytes` and what the disk can hold, and their count within
    `max_members`. A gzip bomb is thus stopped at its first oversized member."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    room = min(max_bytes, shutil.disk_usage(staging).free - DISK_RESERVE_BYTES)
    try:
        total = 0
        with tarfile.open(archive, mode="r|*") as packed:  # one pass over the stream
            for count, member in enumerate(packed, start=1):
                total += max(member.size, 0)
                if count > max_members:
                    raise _too_large(f"more than {max_members:,} files")
                if total > room:
                    raise _too_large(
                        f"more than {room / GiB:,.1f} GiB unpacked"
                        + (" (the free disk space)" if room < max_bytes else "")
                    )
                # The "data" filter refuses absolute paths, '..', links out of the folder
                # and device files.
                packed.extract(member, staging, filter="data")
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


def _too_large(what: str) -> InvalidInput:
    return InvalidInput(
        "model_archive_too_large", f"The model version's archive holds {what}; nothing was kept."
    )


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
