"""Generate the CLI reference (docs/cli.md) from the typer app itself, so the docs cannot drift from the commands.

python -m domainclip.cli.reference > docs/cli.md

Rendered from the click command tree typer builds (what ``--help`` prints), not by typer's own docs generator, so
the page depends on our commands and not on the installed typer version's page layout.
"""

from __future__ import annotations

from typing import Any

import typer

from domainclip.cli.main import app

HEADER = """# CLI reference

Generated from the command line itself by `python -m domainclip.cli.reference`; a test fails when this file is out
of date. Every command takes `--help`. Errors in data or recipes print one line naming the file, row or key, and
exit non-zero.
"""


def _param_rows(command: Any) -> list[str]:
    rows = []
    for param in command.params:
        if param.name == "help":
            continue
        if param.param_type_name == "argument":
            name, kind = f"`{param.name.upper()}`", "argument"
        else:
            name = ", ".join(f"`{opt}`" for opt in [*param.opts, *param.secondary_opts])
            kind = "flag" if getattr(param, "is_flag", False) else "option"
        help_text = (getattr(param, "help", None) or "").replace("|", "\\|").replace("\n", " ")
        shown = (
            param.default is not None
            and param.default is not False
            and param.default != ()
            and not callable(param.default)
        )
        rows.append(f"| {name} | {kind} | {f'`{param.default}`' if shown else ''} | {help_text} |")
    return rows


def _command_section(command: Any, path: list[str]) -> list[str]:
    lines = [f"## `{' '.join(path)}`", ""]
    help_text = (command.help or "").strip()
    if help_text:  # as --help prints it: the examples keep their lines
        lines += ["```text", help_text, "```", ""]
    usage = " ".join(command.collect_usage_pieces(command.context_class(command, info_name=path[-1])))
    lines += ["```", f"{' '.join(path)} {usage}".rstrip(), "```", ""]
    rows = _param_rows(command)
    if rows:
        lines += ["| parameter | kind | default | meaning |", "|---|---|---|---|", *rows, ""]
    return lines


def _overview(group: Any, path: list[str]) -> list[str]:
    rows = [
        f"| [`{' '.join([*path, name])}`](#{'-'.join([*path, name])}) | {_first_line(group.commands[name])} |"
        for name in sorted(group.commands)
    ]
    return [(group.help or "").strip(), "", "| command | what it does |", "|---|---|", *rows, ""]


def _first_line(command: Any) -> str:
    return ((command.help or "").strip().splitlines() or [""])[0].replace("|", "\\|")


def _walk(command: Any, path: list[str]) -> list[str]:
    if hasattr(command, "commands"):  # a group (typer vendors click: no isinstance against click's classes)
        lines = (
            _overview(command, path) if len(path) == 1 else [f"## `{' '.join(path)}`", "", *_overview(command, path)]
        )
        for name in sorted(command.commands):
            lines += _walk(command.commands[name], [*path, name])
        return lines
    return _command_section(command, path)


def render() -> str:
    root = typer.main.get_command(app)
    return HEADER + "\n" + "\n".join(_walk(root, ["domainclip"])).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
