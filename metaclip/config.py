"""Run configurations, owned here: one typed, validated configuration per flow.

Every way of starting a run (the CLI, the Python API, a deployment run) passes its parameters
to a flow, and the flow builds its configuration with `<Config>.from_params(...)` before any
work: a value out of range, an empty or malformed location, a crawl id that is not
CC-MAIN-YYYY-WW, or a credential among the storage options raises UserError with one line that
names the parameter. Checks that need I/O (inputs present, metadata readable) follow in the
flow's preflight, still before any work.

Storage options are per location (inputs and the crawl source, metadata, output, exclusion
store) and never hold secrets: those come from the environment (AWS_* variables, fsspec/s3fs
config files, instance roles) or from a Prefect Secret block named in `credentials`, resolved
where the files are opened (metaclip_prefect.tasks.credentials), so that no secret is ever a
flow parameter, a log line, an artifact or a summary field.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from metaclip.balance import DEFAULT_T
from metaclip.crawls import DATA_ROOT, crawl_sort_key
from metaclip.errors import UserError

LOCATIONS = ("inputs", "metadata", "output", "exclude_store")
# The parameter that holds each location's fsspec options.
OPTION_PARAMETERS = {
    "inputs": "input_options",
    "metadata": "metadata_options",
    "output": "output_options",
    "exclude_store": "exclude_store_options",
}
INPUT_FORMATS = ("wat", "warc", "auto")
MAX_BUCKETS = 4096
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
    authority = value[match.end():].split("/", 1)[0]
    check_no_userinfo(name, value)
    if not authority and scheme not in ("file", "local", "memory"):
        raise _fail(name, f"{value!r} names no bucket or host")
    return value


def check_no_userinfo(name: str, value: Any) -> None:
    """A URI must not carry user:password@ (parameters are stored in Prefect's database)."""
    match = _SCHEME.match(value) if isinstance(value, str) else None
    if match and "@" in value[match.end():].split("/", 1)[0]:
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
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise _fail(name, "is not a JSON object") from None
    if not isinstance(value, Mapping):
        raise _fail(name, f"must be an object of fsspec options, not {type(value).__name__}")
    _refuse_secrets(name, value)
    return dict(value)


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


# --- storage per location ------------------------------------------------------------------


@dataclass(frozen=True)
class Location:
    """How to reach one location: fsspec options (never secret) and, optionally, the name of a
    Prefect Secret block whose JSON object is merged into them where files are opened."""

    options: Mapping[str, Any] = field(default_factory=dict)
    secret_block: str | None = None


@dataclass(frozen=True)
class StorageConfig:
    inputs: Location = Location()
    metadata: Location = Location()
    output: Location = Location()
    exclude_store: Location = Location()

    @classmethod
    def from_params(
        cls,
        credentials: Mapping[str, str] | str | None = None,
        **options: Any,
    ) -> StorageConfig:
        """options: OPTION_PARAMETERS by name; credentials: location -> Secret block name."""
        blocks = check_credentials(credentials)
        unknown = set(options) - set(OPTION_PARAMETERS.values())
        if unknown:
            raise UserError(f"unknown storage parameters: {', '.join(sorted(unknown))}")
        return cls(**{
            loc: Location(parse_options(name, options.get(name)), blocks.get(loc))
            for loc, name in OPTION_PARAMETERS.items()
        })  # fmt: skip


def check_credentials(value: Any) -> dict[str, str]:
    """credentials: {location: Prefect Secret block name}."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise _fail("credentials", "is not a JSON object") from None
    if not isinstance(value, Mapping):
        raise _fail("credentials", "must map locations to Prefect Secret block names")
    for loc, block in value.items():
        check_choice("credentials", loc, LOCATIONS)
        if not isinstance(block, str) or not _BLOCK_NAME.match(block):
            raise _fail(f"credentials.{loc}", f"not a Prefect block name: {block!r}")
    return dict(value)


@dataclass(frozen=True)
class Stores:
    """Resolved fsspec options for each location of one run (secrets included: never persist,
    log or return these). Built where files are opened, from a StorageConfig."""

    inputs: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    exclude_store: dict[str, Any] = field(default_factory=dict)
    exclude_store_root: str | None = None

    def for_written(self, uri: str) -> dict[str, Any]:
        """Options for a file a run wrote: the exclusion store's, or the output's."""
        root = self.exclude_store_root
        if root and (uri == root or uri.startswith(root.rstrip("/") + "/")):
            return self.exclude_store
        return self.output


# --- the cluster -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterConfig:
    """Where tasks run: an existing scheduler, or a local cluster of n_workers processes."""

    dask_address: str | None = None
    n_workers: int | None = None
    dashboard_address: str = ":8787"

    @classmethod
    def from_params(
        cls, dask_address: Any = None, n_workers: Any = None, dashboard_address: Any = ":8787"
    ) -> ClusterConfig:
        if not isinstance(dashboard_address, str):
            raise _fail("dashboard_address", f"must be text like ':8787': {dashboard_address!r}")
        return cls(
            check_dask_address("dask_address", dask_address),
            optional_int("n_workers", n_workers, 1, 4096),
            dashboard_address,
        )


# --- the flows -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CurateConfig:
    """The curate flow's parameters, checked. `inputs` holds what the user named (files, globs,
    folders); the crawl's WAT list is added by the flow's preflight."""

    inputs: tuple[str, ...]
    metadata: str
    output: str
    t: float = DEFAULT_T
    seed: int = 0
    batch_size: int = 16
    n_buckets: int | None = None
    one_text_per_image: bool = True
    exclude_store: str | None = None
    store_tag: str | None = None
    input_format: str = "auto"
    languages: tuple[str, ...] | None = ("en",)
    crawl: str | None = None
    crawl_data_root: str = DATA_ROOT
    max_files: int | None = None
    reduce_fanout: int = 16
    storage: StorageConfig = StorageConfig()
    cluster: ClusterConfig = ClusterConfig()

    @classmethod
    def from_params(
        cls,
        *,
        inputs: Any = None,
        metadata: Any,
        output: Any,
        t: Any = DEFAULT_T,
        seed: Any = 0,
        batch_size: Any = 16,
        n_buckets: Any = None,
        one_text_per_image: Any = True,
        exclude_store: Any = None,
        store_tag: Any = None,
        input_format: Any = "auto",
        languages: Any = ("en",),
        crawl: Any = None,
        crawl_data_root: Any = DATA_ROOT,
        max_files: Any = None,
        reduce_fanout: Any = 16,
        credentials: Any = None,
        dask_address: Any = None,
        n_workers: Any = None,
        dashboard_address: Any = ":8787",
        **storage_options: Any,
    ) -> CurateConfig:
        inputs = check_inputs(inputs, crawl)
        output = check_output_location("output", output)
        store = check_optional_location("exclude_store", exclude_store)
        if store is not None:
            store = check_output_location("exclude_store", store)
            _check_apart(output, store)
        if store_tag is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", str(store_tag)):
            raise _fail("store_tag", "letters, digits, '.', '_' and '-' only (at most 100)")
        if not isinstance(one_text_per_image, bool):
            raise _fail("one_text_per_image", f"must be true or false, not {one_text_per_image!r}")
        return cls(
            inputs=inputs,
            metadata=check_location("metadata", metadata),
            output=output,
            t=check_positive("t", t),
            seed=check_int("seed", seed, 0, 2**63 - 1),
            batch_size=check_int("batch_size", batch_size, 1, 100_000),
            n_buckets=optional_int("n_buckets", n_buckets, 1, MAX_BUCKETS),
            one_text_per_image=one_text_per_image,
            exclude_store=store,
            store_tag=store_tag,
            input_format=check_choice("input_format", input_format, INPUT_FORMATS),
            languages=check_languages("languages", languages),
            crawl=None if crawl in (None, "") else check_crawl_id("crawl", crawl),
            crawl_data_root=check_location("crawl_data_root", crawl_data_root),
            max_files=optional_int("max_files", max_files, 1),
            reduce_fanout=check_int("reduce_fanout", reduce_fanout, 2, 4096),
            storage=StorageConfig.from_params(credentials, **storage_options),
            cluster=ClusterConfig.from_params(dask_address, n_workers, dashboard_address),
        )

    def with_output(self, output: str) -> CurateConfig:
        return replace(self, output=check_output_location("output", output))


def check_inputs(inputs: Any, crawl: Any) -> tuple[str, ...]:
    if inputs is None:
        inputs = []
    if isinstance(inputs, str) or not isinstance(inputs, Sequence):
        raise _fail("inputs", f"must be a list of files, globs, folders or URIs, not {inputs!r}")
    checked = tuple(check_location("inputs", uri) for uri in inputs)
    if not checked and crawl in (None, ""):
        raise UserError("no inputs: give input files (or globs, folders, URIs) or a crawl id")
    return checked


def _check_apart(output: str, store: str) -> None:
    """The output and the exclusion store are written by the run: neither may hold the other."""
    a, b = output.rstrip("/") + "/", store.rstrip("/") + "/"
    if a.startswith(b) or b.startswith(a):
        raise UserError(f"output {output} and exclude_store {store} must not contain each other")


@dataclass(frozen=True)
class RebalanceConfig:
    output: str
    t: float
    seed: int | None = None
    storage: StorageConfig = StorageConfig()
    cluster: ClusterConfig = ClusterConfig()

    @classmethod
    def from_params(
        cls,
        *,
        output: Any,
        t: Any,
        seed: Any = None,
        output_options: Any = None,
        exclude_store_options: Any = None,
        credentials: Any = None,
        dask_address: Any = None,
        n_workers: Any = None,
        dashboard_address: Any = ":8787",
    ) -> RebalanceConfig:
        return cls(
            output=check_output_location("output", output),
            t=check_positive("t", t),
            seed=optional_int("seed", seed, 0, 2**63 - 1),
            storage=StorageConfig.from_params(
                credentials, output_options=output_options,
                exclude_store_options=exclude_store_options,
            ),
            cluster=ClusterConfig.from_params(dask_address, n_workers, dashboard_address),
        )


PROBE_CRAWL = "CC-MAIN-2013-20"  # any valid id: checks a monthly run's curation parameters


@dataclass(frozen=True)
class MonthlyConfig:
    """The monthly flow: which crawl (collinfo, lookback), where (output_root), and the
    curation's own parameters for it (checked as a CurateConfig per crawl)."""

    output_root: str
    metadata: str
    collinfo: str
    data_root: str
    lookback: int
    max_files: int | None
    crawl_options: dict[str, Any]
    curate: dict[str, Any]

    @classmethod
    def from_params(
        cls,
        *,
        output_root: Any,
        metadata: Any,
        collinfo: Any,
        data_root: Any,
        lookback: Any = 1,
        max_files: Any = None,
        crawl_options: Any = None,
        curate: Mapping[str, Any],
    ) -> MonthlyConfig:
        root = _deployment_location("output_root", output_root, "METACLIP_OUTPUT_ROOT")
        data_root = check_location("data_root", data_root)
        crawl_opts = parse_options("crawl_options", crawl_options)
        if crawl_options in (None, "") and data_root.startswith("s3://commoncrawl"):
            crawl_opts = {"anon": True}  # the public bucket: read anonymously, and only it
        config = cls(
            output_root=check_output_location("output_root", root),
            metadata=_deployment_location("metadata", metadata, "METACLIP_METADATA"),
            collinfo=check_location("collinfo", collinfo),
            data_root=data_root,
            lookback=check_int("lookback", lookback, 1, 1000),
            max_files=optional_int("max_files", max_files, 1),
            crawl_options=crawl_opts,
            curate=dict(curate),
        )
        config.curate_config(PROBE_CRAWL)  # the curation's parameters, checked now
        return config

    @property
    def storage(self) -> StorageConfig:
        """The curations' storage (output, metadata; the crawl's are crawl_options)."""
        return self.curate_config(PROBE_CRAWL).storage

    def curate_config(self, crawl_id: str) -> CurateConfig:
        from metaclip.crawls import crawl_output

        return CurateConfig.from_params(
            **self.curate,
            metadata=self.metadata,
            output=crawl_output(self.output_root, crawl_id),
            crawl=crawl_id,
            crawl_data_root=self.data_root,
            max_files=self.max_files,
            input_options=self.crawl_options,
        )


def _deployment_location(name: str, value: Any, variable: str) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise _fail(
            name, f"is empty: pass it, or set {variable} before `prefect deploy` (see "
            "deployments/prefect.yaml)",
        )
    return check_location(name, value)


# --- build-metadata and data experts ---
# (These two flows read every input through one `inputs` location and write one `output`:
# their `credentials` may name only those two.)

from metaclip.metadata.ngrams import COUNT_LAYOUTS, TEXT_FORMATS  # noqa: E402
from metaclip.metadata.sources import SOURCE_NAMES  # noqa: E402
from metaclip.mode.assign import N_EXAMPLES  # noqa: E402
from metaclip.mode.embedding import BATCH_SIZE, DEFAULT_ENCODER, DTYPES, POOLER_PREFIX  # noqa: E402
from metaclip.mode.inputs import SAMPLE_SIZE  # noqa: E402
from metaclip.mode.kmeans import N_COARSE, N_FINE, N_ITER  # noqa: E402
from metaclip.storage import join as storage_join  # noqa: E402

READ_WRITE_LOCATIONS = ("inputs", "output")
_PAGEVIEW_DOMAIN = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
_GLOB = re.compile(r"[*?\[]")
MAX_PARTITIONS = 4096
MIN_MAX_ITEMS = 1000  # fewer n-grams per spill makes thousands of tiny files per task
SEED_MAX = 2**31 - 1  # faiss takes a C int seed


def check_read_write_storage(
    credentials: Any, input_options: Any, output_options: Any
) -> StorageConfig:
    """Storage of a flow that reads `inputs` and writes `output`: their options (never
    credentials) and, for those two locations only, Prefect Secret block names."""
    for loc in check_credentials(credentials):
        check_choice("credentials", loc, READ_WRITE_LOCATIONS)
    return StorageConfig.from_params(
        credentials, input_options=input_options, output_options=output_options
    )


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


@dataclass(frozen=True)
class BuildMetadataConfig:
    """The build-metadata flow's parameters, checked. Inputs (wordnet, wiki_text,
    unigram_counts, bigram_counts, pageviews, extra, base) are read with the `inputs` storage;
    `output` and `work_dir` (always a folder inside the output, default <output>/work, so that
    the output's lease and options cover it) are written with the `output` storage."""

    output: str
    work_dir: str
    wordnet: str | None = None
    wiki_text: tuple[str, ...] = ()
    unigram_counts: tuple[str, ...] = ()
    bigram_counts: tuple[str, ...] = ()
    pageviews: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    base: str | None = None
    min_unigram_count: int = 100
    min_bigram_pmi: float = 30.0
    min_title_views: int = 70
    min_hourly_views: int = 50
    pageview_domains: tuple[str, ...] = ("en",)
    skip: tuple[str, ...] = ()
    max_entries: int | None = None
    partitions: int = 32
    batch_mb: int = 64
    text_format: str = "auto"
    count_layout: str = "auto"
    max_items: int = 1_000_000
    refresh: bool = False
    storage: StorageConfig = StorageConfig()
    cluster: ClusterConfig = ClusterConfig()

    @classmethod
    def from_params(
        cls,
        *,
        output: Any,
        wordnet: Any = None,
        wiki_text: Any = None,
        unigram_counts: Any = None,
        bigram_counts: Any = None,
        pageviews: Any = None,
        extra: Any = None,
        base: Any = None,
        min_unigram_count: Any = 100,
        min_bigram_pmi: Any = 30.0,
        min_title_views: Any = 70,
        min_hourly_views: Any = 50,
        pageview_domains: Any = None,
        skip: Any = None,
        max_entries: Any = None,
        partitions: Any = 32,
        batch_mb: Any = 64,
        text_format: Any = "auto",
        count_layout: Any = "auto",
        max_items: Any = 1_000_000,
        work_dir: Any = None,
        refresh: Any = False,
        input_options: Any = None,
        output_options: Any = None,
        credentials: Any = None,
        dask_address: Any = None,
        n_workers: Any = None,
        dashboard_address: Any = ":8787",
    ) -> BuildMetadataConfig:
        output = check_output_location("output", output)
        work = storage_join(output, "work") if work_dir in (None, "") else check_inside(
            "work_dir", check_output_location("work_dir", work_dir), output, "output"
        )  # fmt: skip
        if wordnet in (None, "", "nltk"):
            wordnet = wordnet or None
        else:
            wordnet = check_location("wordnet", wordnet)
        wiki = check_locations("wiki_text", wiki_text)
        unigrams = check_locations("unigram_counts", unigram_counts)
        bigrams = check_locations("bigram_counts", bigram_counts)
        if wiki and (unigrams or bigrams):
            raise UserError(
                "wiki_text and unigram_counts/bigram_counts: give either a Wikipedia text dump "
                "or precomputed counts, not both"
            )
        if bigrams and not unigrams:
            raise _fail("bigram_counts", "bigram PMI needs unigram counts: add unigram_counts")
        pageviews = check_locations("pageviews", pageviews)
        extra = check_locations("extra", extra)
        base = check_optional_location("base", base)
        if not (wordnet or wiki or unigrams or pageviews or extra or base):
            raise UserError(
                "nothing to build: give wordnet, wiki_text, unigram_counts, pageviews, extra "
                "or base"
            )
        return cls(
            output=output,
            work_dir=work,
            wordnet=wordnet,
            wiki_text=wiki,
            unigram_counts=unigrams,
            bigram_counts=bigrams,
            pageviews=pageviews,
            extra=extra,
            base=base,
            min_unigram_count=check_int("min_unigram_count", min_unigram_count, 1),
            min_bigram_pmi=check_number("min_bigram_pmi", min_bigram_pmi),
            min_title_views=check_int("min_title_views", min_title_views, 1),
            min_hourly_views=check_int("min_hourly_views", min_hourly_views, 1),
            pageview_domains=_pageview_domains(pageview_domains),
            skip=_skip(skip),
            max_entries=optional_int("max_entries", max_entries, 1),
            partitions=check_int("partitions", partitions, 1, MAX_PARTITIONS),
            batch_mb=check_int("batch_mb", batch_mb, 1, 1 << 20),
            text_format=check_choice("text_format", text_format, TEXT_FORMATS),
            count_layout=check_choice("count_layout", count_layout, COUNT_LAYOUTS),
            max_items=check_int("max_items", max_items, MIN_MAX_ITEMS, 10**10),
            refresh=check_bool("refresh", refresh),
            storage=check_read_write_storage(credentials, input_options, output_options),
            cluster=ClusterConfig.from_params(dask_address, n_workers, dashboard_address),
        )


def _pageview_domains(value: Any) -> tuple[str, ...]:
    if value is None or value == [] or value == ():
        return ("en",)
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise _fail("pageview_domains", f"must be a list of domain codes such as ['en'], "
                    f"not {value!r}")  # fmt: skip
    bad = [v for v in value if not isinstance(v, str) or not _PAGEVIEW_DOMAIN.match(v)]
    if bad:
        raise _fail("pageview_domains", "not a Wikimedia domain code (like en or en.m): "
                    f"{', '.join(map(repr, bad))}")  # fmt: skip
    return tuple(dict.fromkeys(value))


def _skip(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise _fail("skip", f"must be a list of sources ({', '.join(SOURCE_NAMES)}), "
                    f"not {value!r}")  # fmt: skip
    return tuple(dict.fromkeys(check_choice("skip", v, SOURCE_NAMES) for v in value))


@dataclass(frozen=True)
class ExpertsConfig:
    """The data-experts flow's parameters, checked: `curated` (a curation output root, its
    curated/ folder, a glob or files) is read with the `inputs` storage, `output` written with
    the `output` storage; neither may hold the other."""

    curated: str
    output: str
    encoder: str = DEFAULT_ENCODER
    n_fine: int = N_FINE
    n_coarse: int = N_COARSE
    balanced: bool = False
    sample_size: int = SAMPLE_SIZE
    outside_share: float = 0.0
    seed: int = 0
    niter: int = N_ITER
    n_examples: int = N_EXAMPLES
    normalize: bool = True
    dtype: str = "float16"
    batch_size: int = BATCH_SIZE
    storage: StorageConfig = StorageConfig()
    cluster: ClusterConfig = ClusterConfig()

    @classmethod
    def from_params(
        cls,
        *,
        curated: Any,
        output: Any,
        encoder: Any = DEFAULT_ENCODER,
        n_fine: Any = N_FINE,
        n_coarse: Any = N_COARSE,
        balanced: Any = False,
        sample_size: Any = SAMPLE_SIZE,
        outside_share: Any = 0.0,
        seed: Any = 0,
        niter: Any = N_ITER,
        n_examples: Any = N_EXAMPLES,
        normalize: Any = True,
        dtype: Any = "float16",
        batch_size: Any = BATCH_SIZE,
        input_options: Any = None,
        output_options: Any = None,
        credentials: Any = None,
        dask_address: Any = None,
        n_workers: Any = None,
        dashboard_address: Any = ":8787",
    ) -> ExpertsConfig:
        curated = check_location("curated", curated)
        output = check_output_location("output", output)
        if contains(output, glob_base(curated)):
            raise _fail("output", f"{output} holds the curated input {curated}: write the "
                        "experts elsewhere")  # fmt: skip
        n_coarse = check_int("n_coarse", n_coarse, 1, 32767)  # the expert column is int16
        n_fine = check_int("n_fine", n_fine, 1, 1 << 20)
        if n_fine < n_coarse:
            raise _fail("n_fine", f"must be at least n_coarse ({n_coarse}), not {n_fine}")
        sample_size = check_int("sample_size", sample_size, 1, 10**12)
        if sample_size < n_fine:
            raise _fail("sample_size", f"must be at least n_fine ({n_fine}): k-means needs a "
                        f"sample row per centre, not {sample_size}")  # fmt: skip
        return cls(
            curated=curated,
            output=output,
            encoder=_encoder(encoder),
            n_fine=n_fine,
            n_coarse=n_coarse,
            balanced=check_bool("balanced", balanced),
            sample_size=sample_size,
            outside_share=check_fraction("outside_share", outside_share),
            seed=check_int("seed", seed, 0, SEED_MAX),
            niter=check_int("niter", niter, 1, 10_000),
            n_examples=check_int("n_examples", n_examples, 0, 10_000),
            normalize=check_bool("normalize", normalize),
            dtype=check_choice("dtype", dtype, DTYPES),
            batch_size=check_int("batch_size", batch_size, 1, 1 << 16),
            storage=check_read_write_storage(credentials, input_options, output_options),
            cluster=ClusterConfig.from_params(dask_address, n_workers, dashboard_address),
        )


def _encoder(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail("encoder", "is empty: give all-MiniLM-L6-v2, a sentence-transformers "
                    "model, pooler:<name or folder> or a SimCSE name")  # fmt: skip
    if value != value.strip() or any(ch in value for ch in "\x00\n\r\t"):
        raise _fail("encoder", f"holds spaces or control characters: {value!r}")
    if value.startswith(POOLER_PREFIX) and not value.removeprefix(POOLER_PREFIX).strip():
        raise _fail("encoder", "pooler: needs a model name or folder after it")
    return value
