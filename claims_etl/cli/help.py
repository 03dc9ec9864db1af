"""`--help` (and `-h`) of every command: usage, description, then one panel per group of options
(`rich_help_panel`, the everyday ones first under "Options") and of commands.

Typer draws the same panels through typer.rich_utils, which imports rich's Markdown, syntax and
traceback support (markdown-it, pygments, attrs) whether it needs them or not: a third of `claims-etl
--help`'s start. These panels need rich's console, table and panel only. They also never cut a word:
an option's names are wrapped at " / " and its help folds rather than ending in "…", so an option or
variable name is always shown whole (at 80 columns the help column is wide enough for the longest)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import click
import typer.core

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

OPTIONS = "Options"
ARGUMENTS = "Arguments"
COMMANDS = "Commands"


class HelpCommand(typer.core.TyperCommand):
    """A command whose help is drawn by `print_help`."""

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        print_help(self, ctx)


class HelpGroup(typer.core.TyperGroup):
    """A command group whose help is drawn by `print_help`."""

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        print_help(self, ctx)


def print_help(command: click.Command, ctx: click.Context) -> None:
    """Usage, the description, the parameters' panels and, for a group, its commands' panels."""
    from rich.console import Console  # cold start: only when help is asked for (module docstring)
    from rich.padding import Padding
    from rich.text import Text

    console = Console(highlight=False)
    console.print(Padding(Text(command.get_usage(ctx), style="bold"), 1))
    if command.help:
        console.print(Padding(_description(command.help), (0, 1, 1, 1)))
    for title, rows in _parameter_panels(command, ctx).items():
        _print_panel(console, title, rows)
    if isinstance(command, click.Group):
        for title, rows in _command_panels(command, ctx).items():
            _print_panel(console, title, rows)


def _description(help_text: str) -> RenderableType:
    """The first paragraph as is, the others dimmed; single line breaks joined (click's convention)."""
    from rich.text import Text  # cold start (module docstring)

    first, *rest = click.unstyle(help_text).split("\f")[0].strip().split("\n\n")
    text = Text(" ".join(first.split()))
    for paragraph in rest:
        text.append("\n\n" + " ".join(paragraph.split()), style="dim")
    return text


def _parameter_panels(command: click.Command, ctx: click.Context) -> dict[str, list[tuple[str, str]]]:
    """Each visible parameter's names and help, by panel: arguments first, then the options without a
    panel, then the other panels in the order their first option is declared."""
    panels: dict[str, list[tuple[str, str]]] = {ARGUMENTS: [], OPTIONS: []}
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        default = ARGUMENTS if isinstance(param, click.Argument) else OPTIONS
        panels.setdefault(getattr(param, "rich_help_panel", None) or default, []).append(_record(param, ctx))
    return {title: rows for title, rows in panels.items() if rows}


def _record(param: click.Parameter, ctx: click.Context) -> tuple[str, str]:
    """An option's names with its metavar, and its help with default, range and `required`, as click
    writes them (click's own method: typer's override imports typer.rich_utils to escape them)."""
    if isinstance(param, click.Option):
        record = click.Option.get_help_record(param, ctx)
        if record is not None:
            return record
    return param.make_metavar(ctx), getattr(param, "help", None) or ""


def _command_panels(group: click.Group, ctx: click.Context) -> dict[str, list[tuple[str, str]]]:
    """Each visible command's name and the first paragraph of its help, by panel."""
    panels: dict[str, list[tuple[str, str]]] = {COMMANDS: []}
    for name in group.list_commands(ctx):
        sub = group.get_command(ctx, name)
        if sub is not None and not sub.hidden:
            title = getattr(sub, "rich_help_panel", None) or COMMANDS
            first = (sub.short_help or sub.help or "").split("\n\n")[0]
            panels.setdefault(title, []).append((name, " ".join(first.split())))
    return {title: rows for title, rows in panels.items() if rows}


def _print_panel(console: Console, title: str, rows: Iterable[tuple[str, str]]) -> None:
    from rich.panel import Panel  # cold start (module docstring)
    from rich.table import Table
    from rich.text import Text

    table = Table.grid(padding=(0, 2), expand=True)
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column(overflow="fold", ratio=1)
    for names, text in rows:
        table.add_row(Text(names.replace(" / ", " /\n")), Text(text))  # Text: "[env ...]" is not markup
    console.print(Panel(table, title=title, title_align="left", border_style="dim"))
