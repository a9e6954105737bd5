"""Which errors are worth a retry: I/O that passes, never errors in the data."""

from __future__ import annotations

import errno

_TRANSIENT_ERRNOS = {
    errno.ECONNRESET,
    errno.ECONNREFUSED,
    errno.ECONNABORTED,
    errno.ETIMEDOUT,
    errno.EPIPE,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.EAGAIN,
}
_TRANSIENT_S3_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
    "503",
    "500",
}
_TRANSIENT_NAMES = {
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ConnectionClosedError",
    "ServerDisconnectedError",
    "ClientConnectorError",
    "ClientPayloadError",
    "IncompleteRead",
}


class TransientIOError(OSError):
    """Raised by our own code for an I/O failure that a retry may cure."""


def is_transient(exc: BaseException | None) -> bool:
    """True for throttling, 5xx, resets and timeouts, also when wrapped in another error."""
    seen = 0
    while exc is not None and seen < 8:
        if _is_transient_one(exc):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _is_transient_one(exc: BaseException) -> bool:
    if isinstance(exc, TransientIOError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError):
        return False
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS:
        return True
    if type(exc).__name__ in _TRANSIENT_NAMES:
        return True
    response = getattr(exc, "response", None)  # botocore ClientError
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in _TRANSIENT_S3_CODES or (isinstance(status, int) and status >= 500)
    return False
