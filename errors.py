"""The one exception tree of salesync.

    SalesyncError
    ├── ConfigError          bad config, CLI usage, unreachable database (exit 2)
    ├── LockHeld             another run holds the lock (exit 4)
    ├── ApiError(status, retriable)
    │   ├── AuthError        401/403: credentials wrong or missing scope
    │   ├── RateLimited      429 after the retry budget
    │   ├── NotFound         404 (and Asana's 402 premium-only): a skipped resource
    │   └── TransportError   timeouts, resets, truncated bodies after the retry budget
    ├── MappingError         a raw record that cannot become a unified one (quarantined)
    ├── PushConflict         a remote object changed under a planned write
    └── UnsafeRequest        a redirect/pagination link to another host, an oversized response

Exceptions carry structured fields and *redacted* URLs only: never build a message from a raw URL
or a credential. ``connectors.http.redact_url`` is the one sanitiser.
"""

from __future__ import annotations


class SalesyncError(Exception):
    """Root of every error salesync raises on purpose."""

    exit_code = 1


class ConfigError(SalesyncError):
    """A config file, CLI argument or database URL is wrong. ``str()`` is one line for the user."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None) -> None:
        self.path = path
        self.key = key
        where = ""
        if path:
            where = f"{path}: "
        if key:
            where += f"{key if key.isprintable() else repr(key)}: "  # a key may hold a newline
        super().__init__(" ".join(f"{where}{message}".splitlines()))


class LockHeld(SalesyncError):
    """Another salesync run holds the database lock."""

    exit_code = 4


class ApiError(SalesyncError):
    """A remote API answered with an error, or could not be reached."""

    exit_code = 3

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retriable: bool = False,
        source: str | None = None,
        url: str | None = None,
    ) -> None:
        self.status = status
        self.retriable = retriable
        self.source = source
        self.url = url  # already redacted by the caller
        prefix = f"{source}: " if source else ""
        code = f"HTTP {status} " if status else ""
        at = f" ({url})" if url else ""
        super().__init__(f"{prefix}{code}{message}{at}")


class AuthError(ApiError):
    """401/403: the credentials are wrong, expired or lack a permission."""


class RateLimited(ApiError):
    """429 beyond the retry budget."""


class NotFound(ApiError):
    """404 (or 402 premium-only): the resource is skipped and recorded in the receipt."""


class TransportError(ApiError):
    """Timeout, reset or unreadable body beyond the retry budget."""


class UnsafeRequest(SalesyncError):
    """A request salesync refuses to make: a link to another host, a response too large."""

    exit_code = 3


class MappingError(SalesyncError):
    """A raw record cannot be mapped; it is quarantined with this reason."""


class PushConflict(SalesyncError):
    """The remote object changed after we read it; re-read before writing."""
