"""`fsre extract`: triples as JSONL. Parses options, builds the recognizer and the scorer, and
hands the run to `pipeline.run`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Optional

import typer

from fsre_cli.cli.common import command, load_schema_and_sidecar, recognizer_for
from fsre_cli.cli.options import (
    PRECISION_HELP, BatchOpt, DeviceOpt, EncoderOpt, LangOpt, LLMModelOpt, NerModelOpt, NoCacheOpt, PackingOpt,
    QuietOpt, SchemaOpt, StanzaDirOpt, VerboseOpt,
)
from fsre_cli.console import Log
from fsre_cli.errors import UsageError

@command
def extract_command(
    inputs: Annotated[Optional[list[str]], typer.Argument(metavar="INPUTS", help="Text files, directories, JSONL files, or - for stdin.")] = None,
    schema_path: SchemaOpt = ...,  # type: ignore[assignment]
    method: Annotated[str, typer.Option("--method", "-m", help="tkre (trained encoder), prototype (no training), "
                                        "qa4re (zero-shot LLM), cascade (encoder, LLM where unsure); auto = tkre "
                                        "when examples exist, else qa4re.")] = "auto",
    min_score: Annotated[Optional[float], typer.Option("--min-score", help="Emit the best relation of a pair when "
                                                       "its score reaches this, -1 to 1 (default: the method's "
                                                       "calibrated decision).")] = None,
    min_precision: Annotated[Optional[float], typer.Option("--min-precision", help="tkre: the threshold at which "
                                                           "the model's held-out triples reached precision P "
                                                           "(0 < P <= 1): fewer, surer triples.")] = None,
    decision: Annotated[str, typer.Option("--decision", help="tkre: threshold (the calibrated one), nota (the best "
                                          "relation when it beats NOTA: no held-out threshold), relation (per-relation "
                                          "held-out thresholds where there were enough pairs).")] = "threshold",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write JSONL here instead of stdout.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="With --output: skip documents already finished.")] = False,
    files_from: Annotated[Optional[str], typer.Option("--files-from", help="Read input paths from FILE (- for stdin).")] = None,
    glob: Annotated[str, typer.Option("--glob", help="Files to take from directories (JSONL files are always taken).")] = "*.txt",
    input_format: Annotated[str, typer.Option("--format", help="auto, text or jsonl.")] = "auto",
    entities: Annotated[str, typer.Option("--entities", help="auto (given spans when a JSONL document has them, "
                                          "else Stanza), given (never load Stanza NER), stanza (ignore given "
                                          "spans).")] = "auto",
    lang: LangOpt = None,
    stanza_dir: StanzaDirOpt = None,
    ner_model: NerModelOpt = None,
    model: Annotated[Optional[str], typer.Option("--model", help="A trained model directory (from `fsre train -o`).")] = None,
    encoder: EncoderOpt = None,
    cascade_band: Annotated[Optional[tuple[float, float]], typer.Option(
        "--cascade-band", help="LOW HIGH: encoder scores sent to the LLM (default: calibrated, see --cascade-route).")] = None,
    cascade_route: Annotated[float, typer.Option("--cascade-route", envvar="FSRE_CASCADE_ROUTE",
                                                 help="Share of pairs the calibrated band sends to the LLM, set on the "
                                                 "model's held-out scores (0 < F <= 1).")] = 0.15,
    llm_model: LLMModelOpt = None,
    no_cache: NoCacheOpt = False,
    keep_going: Annotated[bool, typer.Option("--keep-going", help="Exit 0 even when some inputs were skipped "
                                             "(they are always skipped with a warning and summarised).")] = False,
    device: DeviceOpt = "auto",
    batch_size: BatchOpt = 64,
    precision: Annotated[str, typer.Option("--precision", envvar="FSRE_PRECISION",
                                           help=PRECISION_HELP + " Used when extract trains the model.")] = "auto",
    packing: PackingOpt = None,
    quantize: Annotated[str, typer.Option("--quantize",
                                          help="tkre encoder at extraction: none, or int8 (ONNX Runtime on the CPU, "
                                          "exported once beside the model; needs pip install 'fsre[int8]'; meant for "
                                          "CPUs without native bf16, where torch runs in fp32).")] = "none",
    engine: Annotated[str, typer.Option("--engine", help="local (this process), or ray: Ray Data over the "
                                        "cores of this machine or a cluster (pip install 'fsre[ray]'), writing "
                                        "JSONL shards and a manifest to --output DIR.")] = "local",
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, help="--engine ray: actors, one CPU "
                                                   "each (default: the CPUs Ray has).")] = None,
    address: Annotated[Optional[str], typer.Option("--address", help="--engine ray: join a running cluster "
                                                   "(auto, or ray://HOST:PORT); default: start a local Ray for "
                                                   "the run.")] = None,
    task_lines: Annotated[int, typer.Option("--task-lines", min=1, help="--engine ray: JSONL lines per task "
                                            "(a text file is one task).")] = 500,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Extract relation triples as JSONL (one object per line, stdout unless --output).

    Examples:

    `fsre extract notes.txt --schema schemas/org-people.yaml > triples.jsonl`

    `find corpus -name '*.txt' | fsre extract --files-from - --schema s.yaml`

    `cat article.txt | fsre extract - --schema s.yaml --min-score 0.6`

    `fsre extract notes.txt --schema s.yaml --min-precision 0.9`

    `fsre extract docs.jsonl --schema s.yaml --entities given`

    `fsre extract corpus/ --schema s.yaml --engine ray --workers 8 -o out/` (then `fsre aggregate out/`)
    """
    from fsre_cli import pipeline
    from fsre_cli.entities import ENTITY_MODES
    from fsre_cli.inputs import expand_paths
    from fsre_cli.scorers import ScorerOptions, build
    from fsre_cli.tkre.encoder import set_threads

    log = Log(quiet=quiet, verbose=verbose)
    set_threads()
    if entities not in ENTITY_MODES:
        raise UsageError(f"--entities must be {', '.join(ENTITY_MODES)}, not {entities!r}")
    if min_score is not None and not (math.isfinite(min_score) and -1 <= min_score <= 1):
        # probabilities, or cosine similarities for prototype: nothing outside [-1, 1] is ever reached
        raise UsageError(f"--min-score must be a number from -1 to 1, not {min_score}")
    if min_precision is not None and min_score is not None:
        raise UsageError("--min-precision and --min-score both set the threshold: give one")
    if engine not in ("local", "ray"):
        raise UsageError(f"--engine must be local or ray, not {engine!r}")
    if engine == "ray":
        from fsre_cli.distributed import check_output_dir, require_ray

        require_ray()  # before any model is trained
        if "-" in (inputs or []) or files_from == "-":
            raise UsageError("--engine ray reads files: stdin (-) is for the local engine")
        check_output_dir(output, resume)
    elif workers is not None or address is not None:
        raise UsageError("--workers and --address are for --engine ray")
    sources = expand_paths(inputs or [], glob=glob, files_from=files_from)
    pipeline.check_sources(sources, files_from)
    schema, sidecar = load_schema_and_sidecar(schema_path, log)
    if min_precision is not None or decision != "threshold" or quantize != "none":
        from fsre_cli.scorers.base import resolve_method

        flag = ("--min-precision" if min_precision is not None else "--decision" if decision != "threshold"
                else "--quantize")
        if resolve_method(schema, method) != "tkre":
            raise UsageError(f"{flag} sets how tkre decides or runs; use it with --method tkre")
        if min_precision is not None and decision == "nota":
            raise UsageError("--min-precision sets a threshold, which --decision nota does not use: give one")
    recognizer = recognizer_for(schema, entities=entities, lang=lang, stanza_dir=stanza_dir, ner_model=ner_model,
                                device=device)
    options = ScorerOptions(model=model, encoder=encoder, precision=precision, device=device, batch_size=batch_size,
                            cascade_band=cascade_band, cascade_route=cascade_route, llm_model=llm_model,
                            use_llm_cache=not no_cache, recognizer=recognizer, min_precision=min_precision,
                            decision=decision, packing=packing, quantize=quantize,
                            log=log).validate()
    if engine == "ray":
        from fsre_cli.distributed import run_ray

        ray_result = run_ray(
            sources, schema, sidecar, method=method,
            options=dict(model=model, encoder=encoder, precision=precision, device=device, batch_size=batch_size,
                         cascade_band=cascade_band, cascade_route=cascade_route, llm_model=llm_model,
                         use_llm_cache=not no_cache, min_precision=min_precision, decision=decision, packing=packing,
                         quantize=quantize),
            recognizer=dict(lang=lang, stanza_dir=stanza_dir, ner_model_path=ner_model, entities=entities,
                            use_gpu=device == "cuda"),
            output=output, resume=resume, workers=workers, address=address, input_format=input_format,
            min_score=min_score, lines_per_task=task_lines, log=log)
        log.info(ray_result.summary() + f"; shards in {output}")
        if ray_result.skipped and not keep_going:
            raise typer.Exit(1)
        return
    pipeline.preflight(sources, recognizer, input_format=input_format, output=output, resume=resume)
    scorer = build(schema, sidecar, method=method, options=options)
    result = pipeline.run(sources, schema, scorer, recognizer, output=output, resume=resume,
                          input_format=input_format, min_score=min_score, log=log)
    log.info(result.summary())
    if result.skipped:
        log.warn(f"{len(result.skipped)} input(s) skipped: "
                 + "; ".join(f"{s} ({r})" for s, r in result.skipped[:5])
                 + (" ..." if len(result.skipped) > 5 else ""))
        if not keep_going:
            raise typer.Exit(1)
