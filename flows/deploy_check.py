"""`prefect deploy`'s first step (deployments/prefect.yaml, build): the environment variables
the deployments are filled from must be set and valid, or the deploy stops with one line.

Run by hand: `python -m metaclip_prefect.flows.deploy_check`.
"""

from __future__ import annotations

import os
import sys

from metaclip.config import (
    check_dask_address,
    check_location,
    check_output_location,
    parse_options,
)
from metaclip.errors import UserError

REQUIRED = {
    "METACLIP_OUTPUT_ROOT": check_output_location,  # the monthly flow writes below it
    "METACLIP_METADATA": check_location,
}
OPTIONAL = {
    "METACLIP_DASK_ADDRESS": check_dask_address,  # empty: a local cluster per run
    "METACLIP_OUTPUT_OPTIONS": parse_options,  # empty: the environment's defaults
}


def check_environment(env: dict[str, str]) -> None:
    for name, check in REQUIRED.items():
        if not env.get(name, "").strip():
            raise UserError(f"{name} is not set: export it before `prefect deploy` "
                            "(see deployments/prefect.yaml)")
        check(name, env[name])
    for name, check in OPTIONAL.items():
        check(name, env.get(name, ""))


def main() -> int:
    try:
        check_environment(dict(os.environ))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
