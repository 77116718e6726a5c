"""The ``finegrain`` command line: one entry point, one module per subcommand.

Each module in :mod:`reductions.commands` defines ``register(subparsers)`` (adds its parser
and sets ``func``); ``main`` dispatches.  Conventions: data to stdout, messages to stderr,
``--json`` for machine-readable output, ``-o`` never overwrites without ``--force``.
Exit status: 0 success, 1 a verification disagreed, 2 bad input or usage (one line on
stderr, never a traceback for a user mistake).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any, Callable, Sequence

from attention.errors import FinegrainError

#: Subcommands, in the order ``finegrain --help`` lists them.
COMMANDS = ("demo", "list", "generate", "reduce", "solve", "verify", "grad", "bench", "phase")

EXIT_OK, EXIT_DISAGREE, EXIT_USAGE = 0, 1, 2


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, except that an ``Example: finegrain ...`` epilog stays on one line
    (wrapped, it could not be copied and pasted)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("Example: "):
            return indent + text
        return super()._fill_text(text, width, indent)


class _Parser(argparse.ArgumentParser):
    """argparse with exit status 2 and a one-line message for usage errors."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="finegrain",
        description="The fine-grained complexity of attention training, executable.",
        epilog="Example: finegrain demo",
    )
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("finegrain")
    except PackageNotFoundError:  # running from a source tree
        ver = "unknown"
    parser.add_argument("--version", action="version", version=f"finegrain {ver}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        module = importlib.import_module(f"reductions.commands.{name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (the console script exits with it)."""
    from reductions.commands import common

    argv = list(sys.argv[1:] if argv is None else argv)
    common.CURRENT_ARGV = argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    from reductions.errors import VerificationFailed

    restore = _terminate_as_interrupt()
    try:
        return int(args.func(args) or 0)
    except VerificationFailed as exc:
        print(f"finegrain {args.command}: verification failed: {exc}", file=sys.stderr)
        return EXIT_DISAGREE
    except FinegrainError as exc:
        print(f"finegrain {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError as exc:  # an allocation beyond this machine (numpy names the size and shape)
        print(f"finegrain {args.command}: error: out of memory: {exc}; use smaller sizes", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"finegrain {args.command}: interrupted; no output file was left half-written", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    finally:
        restore()
        common.CURRENT_ARGV = None


def _terminate_as_interrupt() -> Callable[[], None]:
    """Make SIGTERM raise KeyboardInterrupt, like SIGINT (main thread only); returns the undo.

    So ``kill PID`` takes the same path as Ctrl-C: atomic writes delete their temporary
    file, and the command exits with status 130 and one line instead of dying mid-write.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    return lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
