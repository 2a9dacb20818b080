"""The README's command reference, generated from the commands themselves, so it cannot go stale.

    python -m fsre_cli.cli.reference --write README.md   # regenerate the section in place
    python -m fsre_cli.cli.reference                     # print it

The section sits between `<!-- commands:start -->` and `<!-- commands:end -->`; a test checks
that the README holds exactly what this renders.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

START, END = "<!-- commands:start -->", "<!-- commands:end -->"


def _context(cmd, name: str):
    return cmd.context_class(cmd, info_name=name)  # typer carries its own click: use its Context


def _commands(group, prefix: str) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    ctx = _context(group, prefix)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if cmd is None or cmd.hidden:
            continue
        path = f"{prefix} {name}"
        if hasattr(cmd, "list_commands"):
            out += _commands(cmd, path)
        else:
            out.append((path, cmd))
    return out


def _cell(text: str) -> str:
    return re.sub(r"\s+", " ", text).replace("|", "\\|").strip()


def _option_row(param, ctx) -> str:
    """The option as its `--help` line shows it: flags with their value, and the help text."""
    record = param.get_help_record(ctx)
    if record is None:
        return ""
    flags, help_text = record
    return f"| `{flags}` | {_cell(help_text)} |"


def render() -> str:
    """Markdown: per command its usage, what it does, its examples and its options."""
    import typer

    from fsre_cli.cli.root import app

    root = typer.main.get_command(app)
    parts = []
    for path, cmd in _commands(root, "fsre"):
        ctx = _context(cmd, path)
        doc = (cmd.help or "").strip()
        paragraphs = [p.strip() for p in doc.split("\n\n") if p.strip()]
        summary = _cell(paragraphs[0]) if paragraphs else ""
        examples = [m.strip() for p in paragraphs[1:]
                    for m in re.findall(r"`([^`]*fsre [^`]+)`", p) + re.findall(r"^\s*(fsre \S.*)$", p, flags=re.M)
                    if len(m.split()) >= 3]  # a command with arguments, not a mention of one
        usage = cmd.get_usage(ctx).removeprefix("Usage: ")
        lines = [f"### `{path}`", "", summary, "", "```console", f"$ {usage}".rstrip()]
        lines += [f"$ {e.strip()}" for e in dict.fromkeys(examples)]
        lines += ["```", ""]
        rows = [_option_row(p, ctx) for p in cmd.params if p.param_type_name == "option" and p.name != "help"]
        if any(rows):
            lines += ["| option | meaning |", "|---|---|"] + [r for r in rows if r] + [""]
        parts.append("\n".join(lines))
    return "\n".join(parts).rstrip() + "\n"


def replace_section(readme: str, section: str) -> str:
    start, end = readme.index(START) + len(START), readme.index(END)
    return readme[:start] + "\n" + section + readme[end:]


def current_section(readme: str) -> str:
    return readme[readme.index(START) + len(START) : readme.index(END)].lstrip("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render the README's command reference from the CLI.")
    parser.add_argument("--write", type=Path, help="replace the section in this README")
    args = parser.parse_args(argv)
    section = render()
    if args.write is None:
        sys.stdout.write(section)
        return 0
    text = args.write.read_text(encoding="utf-8")
    args.write.write_text(replace_section(text, section), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
