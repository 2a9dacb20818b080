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
from fsre_cli.corpus import DEFAULT_CORPUS_SENTENCES
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
    corpus: Annotated[Optional[list[str]], typer.Option(
        "--corpus", help="Unlabelled documents to pre-train on first (MSLM), as `fsre extract` reads them: files, "
        "folders, JSONL with or without entities, - for stdin. Repeat for more.")] = None,
    corpus_sentences: Annotated[int, typer.Option("--corpus-sentences", min=1, help="Corpus sentences to use at "
                                                  "most (those with a candidate pair, sampled with --seed).")]
    = DEFAULT_CORPUS_SENTENCES,
    corpus_steps: Annotated[int, typer.Option("--corpus-steps", min=1, help="MSLM steps over the corpus, "
                                              "in whole epochs (1 to 10).")] = 150,
    self_train: Annotated[int, typer.Option("--self-train", min=0, help="Rounds of self-training on the corpus: "
                                            "the model's most confident corpus pairs train the next round as silver "
                                            "data, written to NAME.silver.jsonl beside the schema for review.")] = 0,
    silver_ratio: Annotated[float, typer.Option("--silver-ratio", min=0.0, help="Silver positives per relation, "
                                                "at most this times its real examples.")] = 1.0,
    crossfit: Annotated[int, typer.Option("--crossfit", min=0, help="Folds for cross-fitting (at least 2; 0: off): "
                                          "the threshold comes from out-of-fold scores of every example instead of "
                                          "a held-out fifth, and the final model trains on all of them. Costs that "
                                          "many more fine-tunings.")] = 0,
    review_calibrates: Annotated[bool, typer.Option("--review-calibrates", help="Let sentences with decisions "
                                                    "from `fsre review` into the held-out slice that sets the "
                                                    "threshold too. By default they only train, which measured "
                                                    "better.")] = False,
    device: DeviceOpt = "auto",
    quiet: QuietOpt = False,
) -> None:
    """Pre-train (MSLM, then SCL) and fine-tune the encoder for a schema; the model is cached
    by a hash of schema, sidecar, encoder, settings and the example sentences' entities, so a
    second run is instant and `fsre extract` finds it.

    Example: `fsre train schemas/org-people.yaml`

    Example: `fsre train schemas/org-people.yaml --entities given -o models/org-people`

    Example: `fsre train schemas/org-people.yaml --corpus docs/ -o models/org-people-docs` (then `fsre extract
    docs/ --schema schemas/org-people.yaml --model models/org-people-docs`)

    Example: `fsre train schemas/org-people.yaml --corpus docs/ --self-train 1`

    Example: `fsre train schemas/org-people.yaml --crossfit 3 -o models/org-people-cf`
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
    if corpus and no_pretrain:
        raise UsageError("--corpus is read by pre-training, which --no-pretrain turns off")
    if self_train and not corpus:
        raise UsageError("--self-train learns from a corpus: give it with --corpus")
    if crossfit == 1:
        raise UsageError("--crossfit needs at least 2 folds (0 turns it off)")
    if crossfit and self_train:
        raise UsageError("--crossfit and --self-train together are not supported: choose one")
    config = TrainConfig(encoder=encoder, pretrain=not no_pretrain, scl=not no_scl, epochs=epochs,
                         mslm_epochs=mslm_epochs, scl_epochs=scl_epochs, seed=seed, use_synthetic=not no_synthetic,
                         max_length=max_length, precision=check_precision(precision),
                         packing=check_packing(packing or TrainConfig.packing), corpus_steps=corpus_steps,
                         self_train=self_train, silver_ratio=silver_ratio, crossfit=crossfit,
                         heldout_review=review_calibrates)
    if synth:
        from fsre_cli.cli.llm import synth_main

        synth_main(schema_path, log=log)
    schema, sidecar = load_schema_and_sidecar(schema_path, log)
    recognizer = recognizer_for(schema, entities=entities, lang=lang, stanza_dir=stanza_dir, ner_model=ner_model,
                                device=device)
    sentences = []
    if corpus:
        from fsre_cli.corpus import read_corpus

        sentences = read_corpus(corpus, recognizer, schema, limit=corpus_sentences, seed=seed, log=log)
        if not sentences:
            log.warn("the corpus has no sentence with a pair of entities the schema's relations admit; "
                     "training without it")
    mentions = example_mentions(schema, sidecar, config, recognizer)
    artifact, where = ensure_model(schema, sidecar, config, device=pick_device(device), force=force,
                                   mentions=mentions, corpus=sentences, log=log)
    log.info(f"model: {where}")
    if self_train and not artifact.silver:
        log.warn("self-training: no corpus pair scored at or above the threshold, so there was no silver data")
    if artifact.silver and schema.path is not None:
        from fsre_cli.sidecar import write_sidecar
        from fsre_cli.tkre.silver import silver_path

        path = silver_path(schema)
        write_sidecar(path, artifact.silver)
        positives = sum(1 for r in artifact.silver if r.get("relation"))
        log.info(f"silver pairs for review: {path} ({positives} positives, {len(artifact.silver) - positives} NOTA)")
    if output is not None:
        save_artifact(artifact, output)
        log.info(f"written to {output}")
