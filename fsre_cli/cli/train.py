"""`fsre train`: pre-train and fine-tune a schema's model, into the model cache (and `-o DIR`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fsre_cli.cli.common import command, load_schema_and_sidecar, recognizer_for
from fsre_cli.cli.options import (
    DeviceOpt, EncoderOpt, LangOpt, NerModelOpt, PackingOpt, PrecisionOpt, QuietOpt, SchemaArg, SeedOpt,
    StanzaDirOpt,
)
from fsre_cli.console import Log
from fsre_cli.errors import UsageError


@command
def train_command(
    schema_path: SchemaArg,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Also write the model to this directory "
                                                   "(new, empty, or an fsre model to replace).")] = None,
    encoder: EncoderOpt = None,
    no_pretrain: Annotated[bool, typer.Option("--no-pretrain", help="Skip both pre-training stages (ablation).")] = False,
    no_scl: Annotated[bool, typer.Option("--no-scl", help="Skip stage 2, span-level contrastive learning (ablation).")] = False,
    no_synthetic: Annotated[bool, typer.Option("--no-synthetic", help="Ignore the sidecar's LLM-written data (ablation).")] = False,
    synth: Annotated[bool, typer.Option("--synth", help="Generate the sidecar with the LLM first (see `fsre synth`).")] = False,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Fine-tuning epochs at most (early stopping).")] = 30,
    mslm_epochs: Annotated[int, typer.Option("--mslm-epochs", min=0, help="Stage 1 (MSLM) epochs.")] = 5,
    scl_epochs: Annotated[int, typer.Option("--scl-epochs", min=0, help="Stage 2 (SCL+MSLM) epochs.")] = 5,
    max_length: Annotated[int, typer.Option("--max-length", min=16, max=4096,
                                            help="Tokens per marked sentence.")] = 128,
    seed: SeedOpt = 0,
    precision: PrecisionOpt = "auto",
    packing: PackingOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Retrain even when a cached model exists.")] = False,
    entities: Annotated[str, typer.Option("--entities", help="auto: NOTA pairs for training come from Stanza's "
                                          "entities in the example sentences when an NER model is installed; given: "
                                          "never run NER, guess name-like spans (what `fsre extract --entities "
                                          "given` uses).")] = "auto",
    lang: LangOpt = None,
    stanza_dir: StanzaDirOpt = None,
    ner_model: NerModelOpt = None,
    device: DeviceOpt = "auto",
    quiet: QuietOpt = False,
) -> None:
    """Pre-train (MSLM, then SCL) and fine-tune the encoder for a schema; the model is cached
    by a hash of schema, sidecar, encoder, settings and the example sentences' entities, so a
    second run is instant and `fsre extract` finds it.

    Example: `fsre train schemas/org-people.yaml`

    Example: `fsre train schemas/org-people.yaml --entities given -o models/org-people`
    """
    from fsre_cli.paths import check_cache_root
    from fsre_cli.tkre.artifact import check_model_output, save_artifact
    from fsre_cli.tkre.config import TrainConfig
    from fsre_cli.tkre.encoder import check_precision, pick_device, set_threads
    from fsre_cli.tkre.packing import check_packing
    from fsre_cli.tkre.store import ensure_model
    from fsre_cli.tkre.train import example_mentions

    log = Log(quiet=quiet)
    set_threads()
    if entities not in ("auto", "given"):
        raise UsageError("--entities must be auto or given")
    if output is not None:
        check_model_output(output)  # refuse a folder holding other files before minutes of training
    check_cache_root()
    config = TrainConfig(encoder=encoder, pretrain=not no_pretrain, scl=not no_scl, epochs=epochs,
                         mslm_epochs=mslm_epochs, scl_epochs=scl_epochs, seed=seed, use_synthetic=not no_synthetic,
                         max_length=max_length, precision=check_precision(precision),
                         packing=check_packing(packing or TrainConfig.packing))
    if synth:
        from fsre_cli.cli.llm import synth_main

        synth_main(schema_path, log=log)
    schema, sidecar = load_schema_and_sidecar(schema_path, log)
    recognizer = recognizer_for(schema, entities=entities, lang=lang, stanza_dir=stanza_dir, ner_model=ner_model,
                                device=device)
    mentions = example_mentions(schema, sidecar, config, recognizer)
    artifact, where = ensure_model(schema, sidecar, config, device=pick_device(device), force=force,
                                   mentions=mentions, log=log)
    log.info(f"model: {where}")
    if output is not None:
        save_artifact(artifact, output)
        log.info(f"written to {output}")
