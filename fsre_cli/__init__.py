"""fsre: few-shot relation extraction from documents (TKRE encoder, QA4RE zero-shot)."""

__version__ = "0.1.0"
