"""Where the test session keeps what it builds once and reuses: the bundled model converted
to an HF folder (deterministic, ~40 s and 538 MB), and vLLM's cache beside it.

In the user's cache folder by default, like the engine environments, so that a fresh clone
on the same machine (CI's) does not convert it again; `FORGELINE_TEST_MODELS_DIR` moves it.
"""

from __future__ import annotations

import os
from pathlib import Path

from services.common.bundled_model import MODEL_ID

REPO_ROOT = Path(__file__).resolve().parents[1]


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


TEST_MODELS_DIR = Path(
    os.environ.get("FORGELINE_TEST_MODELS_DIR") or _cache_home() / "forgeline" / "test-models"
).absolute()
BUNDLED_MODEL_DIR = TEST_MODELS_DIR / MODEL_ID
