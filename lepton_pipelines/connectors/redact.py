"""One redactor for every message a connector writes about a request, a response or a connection.

Connector errors end up in Dagster's event log, the run index, the compute logs and step-failure
metadata — places many people can read and nobody rotates. So every text that quotes something a
server said, a driver raised or a URL we called passes through ``Redactor`` first:

- the literal secrets the connector holds (the HTTP auth header value and its token, the SQL URL and
  its password), in their plain, URL-encoded and form-encoded spellings;
- whatever *looks* like a credential even when we did not know it: ``scheme://user:password@``,
  ``password=…``/``token=…``/``api_key=…`` pairs, and echoed ``Authorization``/``Cookie``/API-key
  header lines (also as JSON or Python-dict text).

Exceptions from requests, urllib3, psycopg2 or SQLAlchemy are never chained as they are: their text may
hold a DSN, a URL or an echoed header, and Dagster serializes the whole ``__cause__`` chain. ``fail``
builds the ``ConnectorError`` with a redacted stand-in cause that keeps the original's type name and
traceback (code lines only — a traceback holds no values), so debugging loses nothing but the secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, unquote, urlsplit, urlunsplit

from lepton_pipelines.connectors.base import ConnectorError

MASK = "***"
# Secrets shorter than this are only removed where they sit in a credential slot (URL userinfo,
# ``password=``, an auth header); replacing a two-letter password everywhere would mangle the message.
MIN_LITERAL_LENGTH = 4
SECRET_HEADER_NAMES = (
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "x-auth-token",
    "cookie",
    "set-cookie",
)
_SECRET_KEYS = r"password|passwd|pwd|secret|token|access_token|refresh_token|api_key|apikey|client_secret|sig|signature"

_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^\s:/@?#]*):(?P<password>[^\s@/?#]*)@")
_KEY_VALUE = re.compile(
    rf"(?i)(?P<key>\b(?:{_SECRET_KEYS}))(?P<sep>\s*=\s*|['\"]?\s*:\s*['\"]?)(?P<value>[^\s&;,'\")}}]+)"
)


def _header_pattern(names: Iterable[str]) -> re.Pattern[str]:
    alternatives = "|".join(sorted({re.escape(n.lower()) for n in names}, key=len, reverse=True))
    # `Authorization: Bearer x`, `"authorization": "Bearer x"`, `'Authorization': 'Bearer x'`
    return re.compile(rf"(?i)(?P<key>\b(?:{alternatives}))(?P<sep>['\"]?\s*[:=]\s*['\"]?)(?P<value>[^\r\n'\",}}]+)")


class RedactedError(Exception):
    """Stand-in for a library exception whose text was redacted; ``str`` names the original type."""


class Redactor:
    """Scrubs the given secrets (and anything shaped like a credential) from text, URLs and exceptions."""

    def __init__(self, secrets: Iterable[str | None] = (), header_names: Iterable[str] = ()):
        literals: set[str] = set()
        for secret in secrets:
            if not secret:
                continue
            token = secret.split(" ", 1)[-1] if " " in secret.strip() else secret  # `Bearer <token>` → token
            for value in {secret, token, unquote(secret)}:
                literals.update({value, quote(value, safe=""), quote_plus(value), quote(value)})
        # Longest first, so a URL is masked whole before its password inside it is looked for.
        self._literals = sorted((s for s in literals if len(s) >= MIN_LITERAL_LENGTH), key=len, reverse=True)
        self._headers = _header_pattern([*SECRET_HEADER_NAMES, *header_names])

    def text(self, text: object) -> str:
        result = str(text)
        for literal in self._literals:
            result = result.replace(literal, MASK)
        result = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", result)
        result = self._headers.sub(lambda m: f"{m['key']}{m['sep']}{MASK}", result)
        return _KEY_VALUE.sub(lambda m: f"{m['key']}{m['sep']}{MASK}", result)

    def excerpt(self, text: str, length: int) -> str:
        """The first ``length`` characters *after* redaction: cutting first could leave half a secret
        that no longer matches. Only a window a little longer than the excerpt is scanned."""
        longest = len(self._literals[0]) if self._literals else 0
        return self.text(text[: length + longest + 256])[:length]

    def url(self, url: str) -> str:
        """The URL without its userinfo (user and password), then scrubbed like any text."""
        parts = urlsplit(url)
        if parts.username is not None or parts.password is not None:
            host = parts.hostname or ""
            url = urlunsplit(parts._replace(netloc=f"{host}:{parts.port}" if parts.port else host))
        return self.text(url)

    def describe(self, exc: BaseException, max_lines: int = 3) -> str:
        """``Type: message`` of a library exception, redacted and folded onto one line."""
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        message = " ".join(lines[:max_lines])
        return self.text(f"{type(exc).__name__}: {message}" if message else type(exc).__name__)

    def stand_in(self, exc: BaseException) -> RedactedError:
        """A redacted copy of ``exc`` and its cause chain, keeping each original traceback."""
        copy = RedactedError(self.text(f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}"))
        copy.__traceback__ = exc.__traceback__
        inner = exc.__cause__ if exc.__cause__ is not None else (None if exc.__suppress_context__ else exc.__context__)
        if inner is not None and inner is not exc:
            copy.__cause__ = self.stand_in(inner)
        copy.__suppress_context__ = True
        return copy

    def fail(self, message: str, cause: BaseException | None = None, kind: type[Exception] | None = None) -> Exception:
        """The error to raise: redacted message, redacted stand-in cause, and no raw implicit context."""
        error = (kind or ConnectorError)(self.text(message))
        error.__cause__ = self.stand_in(cause) if cause is not None else None
        error.__suppress_context__ = True  # `raise` inside `except` would otherwise chain the raw exception
        return error
