"""Write docs/commands.md from the `--help` of every kjob command and subcommand.

    python scripts/command_docs.py           # rewrite docs/commands.md
    python scripts/command_docs.py --check   # exit 1 when docs/commands.md is stale

The page is generated, never edited by hand: each command's docstring is its `--help`, so the
reference cannot drift from the code. The output is deterministic: a fixed width, commands in
name order, and commands hidden without an optional extra (the speech example's) shown as well.
Only click and kjob's light CLI modules are imported (never torch).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "commands.md"
WIDTH = 100

HEADER = """# Command reference

Generated from each command's `--help` by `scripts/command_docs.py`; do not edit by hand
(`python scripts/command_docs.py` rewrites it, `--check` says whether it is stale).
Exit codes are explained in [exit-codes.md](exit-codes.md). The speech example's commands
(`demo`, `eval-local`, `compare`, `leakage`) need the `speech` extra; without it they are hidden
from `kjob --help`, but are listed here.
"""


def _cli() -> click.Group:
    sys.path.insert(0, str(ROOT / "src"))
    from kjob.cli import cli

    return cli


def walk(command: click.Command, path: tuple[str, ...] = ()):
    """(path, command) for the command and every subcommand under it, in name order."""
    yield path, command
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            yield from walk(command.commands[name], path + (name,))


def _help(cli: click.Group, path: tuple[str, ...]) -> str:
    ctx = click.Context(cli, info_name="kjob", terminal_width=WIDTH, max_content_width=WIDTH)
    command: click.Command = cli
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
        ctx = click.Context(command, info_name=name, parent=ctx, terminal_width=WIDTH,
                            max_content_width=WIDTH)
    return command.get_help(ctx).rstrip()


def render() -> str:
    cli = _cli()
    commands = list(walk(cli))
    hidden = [command for _, command in commands if command.hidden]
    for command in hidden:  # listed whatever extras this machine has installed
        command.hidden = False
    try:
        parts = [HEADER]
        toc = []
        for path, _ in commands:
            title = " ".join(("kjob",) + path)
            anchor = title.replace(" ", "-")
            toc.append(f"- [`{title}`](#{anchor})")
        parts.append("\n".join(toc) + "\n")
        for path, _ in commands:
            title = " ".join(("kjob",) + path)
            parts.append(f"## {title}\n\n```text\n{_help(cli, path)}\n```\n")
    finally:
        for command in hidden:
            command.hidden = True
    return "\n".join(parts)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text(encoding="utf-8") != text:
            print(f"{TARGET.relative_to(ROOT)} is stale: run python scripts/command_docs.py", file=sys.stderr)
            return 1
        return 0
    TARGET.parent.mkdir(exist_ok=True)
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
