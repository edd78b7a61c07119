"""Every option of every ``vqkit`` sub-command has help that shows its default (an option
without one says what happens when it is left out), and no description, help or rendered
``--help`` carries reStructuredText markup (``--help`` is read as plain text)."""

from __future__ import annotations

import argparse
import re

from vqkit.cli.main import build_parser

#: reST that argparse would print verbatim: double backticks and Sphinx roles.
REST = re.compile(r"``|:(func|class|mod|meth|attr|data|obj|exc|ref|doc):`")

#: Actions that take no value (flags, --help): their default (False/None) needs no mention.
FLAG_ACTIONS = (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._CountAction,
                argparse._HelpAction, argparse._VersionAction, argparse._StoreConstAction)


def walk(parser: argparse.ArgumentParser, prog: str | None = None):
    """(prog, parser) of ``parser`` and of every sub-command under it, depth first."""
    prog = prog or parser.prog
    yield prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, f"{prog} {name}")


def problems(parser: argparse.ArgumentParser) -> list[str]:
    found = []
    for prog, p in walk(parser):
        if p.description and REST.search(p.description):
            found.append(f"{prog}: reST markup in the description")
        if p.epilog and REST.search(p.epilog):
            found.append(f"{prog}: reST markup in the epilog")
        shows_defaults = issubclass(p.formatter_class, argparse.ArgumentDefaultsHelpFormatter)
        formatter = p._get_formatter()
        for action in p._actions:
            name = "/".join(action.option_strings) or action.dest
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    if not choice.help:
                        found.append(f"{prog} {choice.dest}: sub-command without help")
                    elif REST.search(choice.help):
                        found.append(f"{prog} {choice.dest}: reST markup in the help")
                continue
            if action.help == argparse.SUPPRESS:
                continue
            if not action.help:
                found.append(f"{prog} {name}: no help")
                continue
            text = formatter._expand_help(action)
            if REST.search(text):
                found.append(f"{prog} {name}: reST markup in the help")
            default = action.default
            if (not action.option_strings or action.required or shows_defaults
                    or isinstance(action, FLAG_ACTIONS) or default is argparse.SUPPRESS):
                continue
            if default is None:
                if "default" not in text:
                    found.append(f"{prog} {name}: help does not say what the default is")
            elif "default" not in text or str(default) not in text:
                found.append(f"{prog} {name}: help does not show the default {default!r}")
        if REST.search(p.format_help()):
            found.append(f"{prog}: reST markup in --help")
    return found


def test_every_option_has_help_with_its_default_and_no_rest():
    found = problems(build_parser())
    assert not found, "\n".join(found)


def test_the_check_catches_each_kind_of_problem():
    parser = argparse.ArgumentParser(prog="x", description="see ``x``")
    sub = parser.add_subparsers()
    child = sub.add_parser("child", help="uses :func:`f`")
    child.add_argument("--bare", type=int)
    child.add_argument("--silent", type=int, default=3, help="a number")
    child.add_argument("--fine", type=int, default=3, help="a number (default: %(default)s)")
    child.add_argument("--unsaid", help="a file")
    child.add_argument("--said", help="a file (default: none)")
    child.add_argument("--needed", required=True, help="a file")
    child.add_argument("positional", help="a file")
    child.add_argument("--ref", metavar="``X``", help="a file (default: none)")
    found = problems(parser)
    assert any("x: reST markup in the description" in f for f in found)
    assert any("child: reST markup in the help" in f for f in found)
    assert any("--bare: no help" in f for f in found)
    assert any("--silent: help does not show the default 3" in f for f in found)
    assert not any("--fine" in f for f in found)
    assert any("--unsaid: help does not say what the default is" in f for f in found)
    assert not any(k in f for f in found for k in ("--said", "--needed", "positional"))
    assert any("child: reST markup in --help" in f for f in found)  # only the usage shows it


def test_every_sub_command_is_checked():
    progs = {prog for prog, _ in walk(build_parser())}
    expected = {"vqkit fit", "vqkit encode", "vqkit decode", "vqkit eval", "vqkit info",
                "vqkit demo", "vqkit report", "vqkit reproduce", "vqkit image compress",
                "vqkit image decompress", "vqkit image train", "vqkit speech encode",
                "vqkit speech decode"}
    assert expected <= progs, expected - progs


def test_threads_default_is_shown_everywhere():
    """Every command that takes --threads says what its default is."""
    for prog, p in walk(build_parser()):
        for action in p._actions:
            if "--threads" in action.option_strings:
                text = p._get_formatter()._expand_help(action)
                assert "default" in text and str(action.default) in text, prog
