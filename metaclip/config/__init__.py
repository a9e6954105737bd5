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

from metaclip.config.builds import BuildMetadataConfig, ExpertsConfig
from metaclip.config.checks import (
    check_choice,
    check_crawl_id,
    check_dask_address,
    check_int,
    check_languages,
    check_limits,
    check_location,
    check_no_userinfo,
    check_output_location,
    check_positive,
    contains,
    glob_base,
    optional_int,
    parse_options,
)
from metaclip.config.curation import (
    PROBE_CRAWL,
    ClusterConfig,
    CurateConfig,
    MonthlyConfig,
    PoolConfig,
    RebalanceConfig,
)
from metaclip.config.storage import (
    LOCATIONS,
    OPTION_PARAMETERS,
    Location,
    StorageConfig,
    Stores,
)

__all__ = [
    "LOCATIONS",
    "OPTION_PARAMETERS",
    "PROBE_CRAWL",
    "BuildMetadataConfig",
    "ClusterConfig",
    "CurateConfig",
    "ExpertsConfig",
    "Location",
    "MonthlyConfig",
    "PoolConfig",
    "RebalanceConfig",
    "StorageConfig",
    "Stores",
    "check_choice",
    "check_crawl_id",
    "check_dask_address",
    "check_int",
    "check_languages",
    "check_limits",
    "check_location",
    "check_no_userinfo",
    "check_output_location",
    "check_positive",
    "contains",
    "glob_base",
    "optional_int",
    "parse_options",
]
