"""Shared test set-up. Stage-specific fixtures live in their own modules, imported here."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

torch.set_num_threads(1)  # two threads on a loaded 2-core machine can be 10x slower

from fixtures_stanza import *  # noqa: E402,F401,F403
from fixtures_llm import *  # noqa: E402,F401,F403
