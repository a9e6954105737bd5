"""Checks of single parameter values: numbers in range, locations, crawl ids, languages,
storage options without credentials. Each raises UserError with one line naming the parameter."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, fields
from typing import Any

import orjson

from metaclip.curation.crawls import crawl_sort_key
from metaclip.errors import UserError
from metaclip.extraction.limits import DEFAULT_LIMITS, ExtractLimits

# Option names that carry credentials, at any depth of a storage-options object (lowercase).
SECRET_OPTION_NAMES = frozenset({
    "key", "secret", "token", "password", "passwd", "pass", "username",
    "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "session_token",
    "access_key", "secret_key", "access_key_id", "secret_access_key", "client_secret",
    "account_key", "sas_token", "connection_string", "credentials", "credential", "api_key",
    "private_key", "auth", "authorization", "bearer", "signature",
})  # fmt: skip
_BLOCK_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
_DASK_ADDRESS = re.compile(r"^(tcp|tls|ucx|ws|wss|inproc)://[^\s/]+$")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
_GLOB = re.compile(r"[*?\[]")

# --- single values ---------------------------------------------------------------------------


def _fail(name: str, problem: str) -> UserError:
    return UserError(f"{name}: {problem}")


def check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(name, f"must be a whole number, not {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f"at least {low}" if high is None else f"between {low} and {high}"
        raise _fail(name, f"must be {bounds}, not {value}")
    return value


def optional_int(name: str, value: Any, low: int, high: int | None = None) -> int | None:
    return None if value is None else check_int(name, value, low, high)


def check_positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(name, f"must be a number, not {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise _fail(name, f"must be a positive finite number, not {value}")
    return float(value)


def check_fraction(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(name, f"must be a number, not {value!r}")
    if not 0.0 <= value <= 1.0:
        raise _fail(name, f"must be between 0 and 1, not {value}")
    return float(value)


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise _fail(name, f"must be one of {', '.join(choices)}, not {value!r}")
    return str(value)


def check_crawl_id(name: str, value: Any) -> str:
    try:
        year, week = crawl_sort_key(value) if isinstance(value, str) else (0, 0)
    except ValueError:
        year, week = 0, 0
    if not 2008 <= year <= 2999 or not 1 <= week <= 53:
        raise _fail(name, f"must be a crawl id like CC-MAIN-2024-22, not {value!r}")
    return str(value)


def check_location(name: str, value: Any) -> str:
    """A local path or fsspec URI: non-empty, known scheme, no credentials in it."""
    if not isinstance(value, str) or not value.strip():
        raise _fail(name, "is empty: give a local path or a URI such as s3://bucket/prefix")
    if any(ch in value for ch in "\x00\n\r"):
        raise _fail(name, "holds a control character")
    match = _SCHEME.match(value)
    if match is None:
        return value
    scheme = match.group(1).lower()
    if scheme not in _known_schemes():
        raise _fail(name, f"unknown storage scheme {scheme}:// in {value!r}")
    authority = value[match.end() :].split("/", 1)[0]
    check_no_userinfo(name, value)
    if not authority and scheme not in ("file", "local", "memory"):
        raise _fail(name, f"{value!r} names no bucket or host")
    return value


def check_no_userinfo(name: str, value: Any) -> None:
    """A URI must not carry user:password@ (parameters are stored in Prefect's database)."""
    match = _SCHEME.match(value) if isinstance(value, str) else None
    if match and "@" in value[match.end() :].split("/", 1)[0]:
        raise _fail(name, "must not carry credentials (user:password@); see docs/operations.md")


def _known_schemes() -> set[str]:
    from fsspec.registry import known_implementations, registry

    return {*known_implementations, *registry}


def check_output_location(name: str, value: Any) -> str:
    """A location a run writes into: as check_location, local paths made absolute, never a
    filesystem root or an existing file."""
    uri = check_location(name, value)
    if _SCHEME.match(uri) and not uri.startswith("file://"):
        return uri.rstrip("/")
    path = os.path.abspath(os.path.expanduser(uri.removeprefix("file://")))
    if os.path.dirname(path) == path:
        raise _fail(name, f"{value!r} is a filesystem root: name a folder to write into")
    if os.path.exists(path) and not os.path.isdir(path):
        raise _fail(name, f"{path} exists and is not a folder")
    return path


def check_optional_location(name: str, value: Any) -> str | None:
    return None if value is None or value == "" else check_location(name, value)


def check_dask_address(name: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _DASK_ADDRESS.match(value):
        raise _fail(name, f"must be a scheduler address like tcp://host:8786, not {value!r}")
    return value


def check_languages(name: str, value: Any) -> tuple[str, ...] | None:
    if value is None or value == [] or value == ():
        return None
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise _fail(name, f"must be a list of language codes such as ['en'], not {value!r}")
    bad = [v for v in value if not _LANGUAGE.match(v)]
    if bad:
        raise _fail(name, f"not a fastText language code: {', '.join(map(repr, bad))}")
    return tuple(value)


def parse_options(name: str, value: Any) -> dict[str, Any]:
    """Storage options: a dict, or a JSON object as text (a deployment's `{{ $VAR }}`)."""
    if value is None or value == "":
        return {}
    value = _from_json(name, value)
    if not isinstance(value, Mapping):
        raise _fail(name, f"must be an object of fsspec options, not {type(value).__name__}")
    _refuse_secrets(name, value)
    return dict(value)


def _from_json(name: str, value: Any) -> Any:
    """A JSON text (a deployment's `{{ $VAR }}`) parsed; any other value as it is."""
    if not isinstance(value, str):
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        raise _fail(name, "is not a JSON object") from None


def _refuse_secrets(name: str, value: Any, path: str = "") -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if str(key).lower() in SECRET_OPTION_NAMES:
                raise _fail(
                    name,
                    f"option {where!r} is a credential: parameters are stored in Prefect's "
                    "database, so give credentials through the environment, an fsspec/s3fs "
                    "config file or a Prefect Secret block named in `credentials`",
                )
            _refuse_secrets(name, item, where)
    elif isinstance(value, list | tuple):
        for item in value:
            _refuse_secrets(name, item, path)
    elif isinstance(value, str) and _SCHEME.match(value):
        check_location(f"{name} ({path})", value)  # no user:password@ in an endpoint URL


MAX_LIMIT = 2**63 - 1  # a limit is stored in JSON (summary, cache keys) as a 64-bit integer


def check_limits(name: str, value: Any) -> ExtractLimits:
    """Per-record extraction limits (extraction.limits): a mapping of some of ExtractLimits'
    fields, or a JSON object as text (a deployment's `{{ $VAR }}`); None or {} is the defaults."""
    if value is None or value == "":
        return DEFAULT_LIMITS
    if isinstance(value, ExtractLimits):
        return value
    value = _from_json(name, value)
    if not isinstance(value, Mapping):
        raise _fail(name, f"must be an object like {{\"max_text_chars\": 2000}}, not "
                    f"{type(value).__name__}")  # fmt: skip
    if not all(isinstance(key, str) for key in value):
        raise _fail(name, f"keys must be limit names, not {sorted(map(repr, value))}")
    try:
        limits = ExtractLimits.from_dict(dict(value))
    except (TypeError, ValueError) as exc:
        problem = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        message = problem if problem.startswith(f"{name}.") else f"{name}: {problem}"
        raise UserError(message) from None
    for key, number in limits.to_dict().items():
        check_int(f"{name}.{key}", number, 1, MAX_LIMIT)
    return limits


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(name, f"must be true or false, not {value!r}")
    return value


def check_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(name, f"must be a number, not {value!r}")
    if not math.isfinite(value):
        raise _fail(name, f"must be a finite number, not {value}")
    return float(value)


def check_locations(name: str, value: Any) -> tuple[str, ...]:
    """A list of inputs (files, globs, folders, URIs); None is none."""
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise _fail(name, f"must be a list of files, globs, folders or URIs, not {value!r}")
    return tuple(check_location(name, uri) for uri in value)


def check_inside(name: str, value: str, root: str, root_name: str) -> str:
    """`value` (a checked output location) lies strictly inside `root`."""
    if not value.startswith(root.rstrip("/") + "/"):
        raise _fail(name, f"{value} must be a folder inside {root_name} {root}")
    return value


def _local_or_uri(uri: str) -> str:
    """A location comparable with a checked output: local paths absolute, no trailing '/'."""
    if _SCHEME.match(uri) and not uri.startswith("file://"):
        return uri.rstrip("/")
    return os.path.abspath(os.path.expanduser(uri.removeprefix("file://")))


def glob_base(uri: str) -> str:
    """The folder a glob lists (the part before its first wildcard); a path as it is."""
    match = _GLOB.search(uri)
    if match is None:
        return _local_or_uri(uri)
    prefix = uri[: match.start()]
    folder = prefix.rsplit("/", 1)[0] if "/" in prefix else "."
    return _local_or_uri(folder or "/")


def contains(outer: str, inner: str) -> bool:
    """Whether location `inner` is `outer` or lies below it."""
    return inner == outer or inner.startswith(outer.rstrip("/") + "/")


# --- a flow's parameters ---------------------------------------------------------------------

CLUSTER_PARAMETERS = ("dask_address", "n_workers", "dashboard_address")


def given_or_default(
    config: type, given: Mapping[str, Any], extra: Sequence[str] = ()
) -> dict[str, Any]:
    """A flow's parameters as its configuration reads them: each one given, else its field's
    default on the configuration dataclass (so a default is written once, on the field), else
    None (required fields, and the `extra` parameters that are not fields, such as storage
    options). A name the configuration does not know is a UserError."""
    known = {f.name: f for f in fields(config)}
    unknown = sorted(set(given) - set(known) - set(extra))
    if unknown:
        raise UserError(f"unknown parameters: {', '.join(unknown)}")
    params: dict[str, Any] = dict.fromkeys(extra)
    params.update({n: f.default for n, f in known.items() if f.default is not MISSING})
    params.update({n: None for n in known if n not in params})
    params.update(given)
    return params


def picked(params: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """The given parameters among `names` (a part of the configuration built by its own class)."""
    return {name: params[name] for name in names if name in params}
