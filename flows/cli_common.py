"""What every `metaclip` subcommand shares: one-line errors and exit codes, running a flow and
classifying its end, the storage options and credentials options.

Exit codes: 0 success, 1 the run failed, 2 a usage or input mistake.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from metaclip.config import check_no_userinfo, parse_options
from metaclip.errors import UserError

EXIT_FAILED = 1
EXIT_USAGE = 2


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
