"""Options more than one command takes, declared once (typer's `Annotated` style, used everywhere)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

PRECISION_HELP = ("Training precision: auto (bf16 where the CPU or GPU computes it natively, about twice as fast; "
                  "else fp32), fp32 or bf16.")

SchemaArg = Annotated[Path, typer.Argument(metavar="SCHEMA", help="Schema YAML file.")]
SchemaOpt = Annotated[Path, typer.Option("--schema", "-s", help="Schema YAML file.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors on stderr.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Per-document counts on stderr.")]
EncoderOpt = Annotated[Optional[str], typer.Option("--encoder", envvar="FSRE_ENCODER",
                                                   help="Hugging Face model id or local path (default: bundled MiniLM).")]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu, cuda or auto.")]
PrecisionOpt = Annotated[str, typer.Option("--precision", envvar="FSRE_PRECISION", help=PRECISION_HELP)]
PACKING_HELP = ("How candidate pairs reach the encoder when a model is trained: head (the default: one pass per "
                "head mention, all its tails marked too), pair (one pass per pair, the reference), or sentence (one "
                "pass per sentence, every mention marked alike; fastest, less accurate). A trained model is always "
                "scored the way it was trained.")
PackingOpt = Annotated[Optional[str], typer.Option("--packing", envvar="FSRE_PACKING", help=PACKING_HELP)]
MAX_BATCH = 1024  # = tkre.config.MAX_SCORING_ROWS (not imported: this module loads at `fsre --help`)
BatchOpt = Annotated[int, typer.Option("--batch-size", min=1, max=MAX_BATCH,
                                       help="Pairs per encoder batch (a packed model's batches hold a quarter or an "
                                       "eighth as many passes); every batch has exactly its number of rows, so a "
                                       "pair's score never depends on its neighbours.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed (training is deterministic on CPU).")]
LangOpt = Annotated[Optional[str], typer.Option("--lang", help="Language for Stanza (default: the schema's, else en).")]
StanzaDirOpt = Annotated[Optional[str], typer.Option("--stanza-dir", envvar="FSRE_STANZA_DIR",
                                                     help="Stanza model folder (default: Stanza's own).")]
NerModelOpt = Annotated[Optional[str], typer.Option("--ner-model", envvar="FSRE_NER_MODEL",
                                                    help="A Stanza NER model file to use instead of the downloaded one.")]
LLMModelOpt = Annotated[Optional[str], typer.Option("--llm-model", envvar="FSRE_LLM_MODEL",
                                                    help="Model name at the LLM endpoint (default: its first model).")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Ask the LLM again instead of reusing cached answers.")]
