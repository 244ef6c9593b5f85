"""Secret redaction: the one place that decides what is a credential and hides it.

Everything that writes text a person or a file may see goes through here: the config's ``repr`` and saved
copies (``config.frozen``), the saved and reported command line (``output``), storage error messages and
URIs (``storage.client``, ``storage.uri``). A leaf module: it imports nothing from dl-driver.

What is hidden:

- values whose key name holds a secret word (``SECRET_WORDS``, matched anywhere in the last name, case
  ignored), and everything below such a key; ``PUBLIC_NAMES`` (``access_key_id``: the public half of a
  key pair, shown in reports as DLIO shows it) stay visible;
- secrets embedded in a value: connection-string keys (``AccountKey=``, ``SharedAccessSignature=``),
  SAS and presigned-URL signatures (``?sig=``, ``X-Amz-Signature=``...), passwords in URLs
  (``http://user:SECRET@host``);
- known secret values wherever they appear in a message (``redact_message``).

Example:
    >>> is_secret_key("secret_access_key"), is_secret_key("access_key_id")
    (True, False)
    >>> redact({"region": "us-east-1", "session_token": "t0k", "url": "http://u:pw@h:9000"})
    {'region': 'us-east-1', 'session_token': '***', 'url': 'http://u:***@h:9000'}
    >>> redact_override("++workload.storage.storage_options={secret_access_key: X, region: r}")
    "++workload.storage.storage_options={secret_access_key: '***', region: r}"
    >>> redact_message(OSError("denied for hunter22"), ["hunter22"])
    'denied for ***'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import yaml

__all__ = [
    "REDACTED", "SECRET_WORDS", "PUBLIC_NAMES", "is_secret_key", "is_secret_path", "redact_value", "redact",
    "redact_uri", "redact_override", "secret_values", "scrub", "redact_message",
]

REDACTED = "***"

# A key whose last name contains one of these words holds a credential. ``key`` alone covers every
# ``*_key`` (s3fs's ``key``/``secret``, adlfs's ``account_key``, ``sse_customer_key``); the longer words are
# listed so the list says what it is for. ``sas`` covers ``sas_token``, ``sas_url``, ``azure_sas``.
SECRET_WORDS = ("secret", "password", "passwd", "token", "connection_string", "credential", "account_key",
                "private_key", "api_key", "sas", "key")
# Names that contain a secret word but identify rather than grant access (DLIO reports the access key id).
PUBLIC_NAMES = frozenset({"access_key_id", "key_id"})

_SECRET_WORD = re.compile("|".join(re.escape(w) for w in SECRET_WORDS), re.IGNORECASE)
# Markers of a secret inside a value: connection strings, SAS query strings, presigned URLs.
_MARKERS = (r"((?:AccountKey|SharedAccessSignature|SharedAccessKey)=|[?&](?:sig|X-Amz-Signature|X-Amz-Credential|"
            r"X-Amz-Security-Token|access_token|token)=)")
# In a config value the secret runs to the next separator; in free text it also ends at a space or a
# quote, so the rest of a message stays readable.
_IN_VALUE = re.compile(_MARKERS + r"([^;&]*)", re.IGNORECASE)
_IN_TEXT = re.compile(_MARKERS + r"([^;&\s\"']*)", re.IGNORECASE)
# ``scheme://user:password@``; a bare ``name@`` stays (abfs://container@account... names no secret).
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://)([^/@:]*):([^/@]*)@")
# ``name: value`` / ``name=value`` pairs, for a mapping override that is not valid YAML.
_PAIR = re.compile(r"(?P<name>[A-Za-z_][\w.-]*)(?P<sep>\s*[:=]\s*)(?P<value>\"[^\"]*\"|'[^']*'|[^,}\]\s]+)")
_MIN_SECRET_CHARS = 4  # shorter known values would mask ordinary words in messages


def is_secret_key(name: str) -> bool:
    """Whether a key name (the last component of a dotted path) holds a credential.

    >>> is_secret_key("storage.storage_options.sas_token"), is_secret_key("region"), is_secret_key("key_id")
    (True, False, False)
    """
    last = str(name).rsplit(".", 1)[-1].lower()
    return last not in PUBLIC_NAMES and bool(_SECRET_WORD.search(last))


def is_secret_path(path: str) -> bool:
    """Whether any component of dotted ``path`` names a secret (what is below a secret is secret too).

    >>> is_secret_path("storage.storage_options.credentials.client_id"), is_secret_path("reader.batch_size")
    (True, False)
    """
    return any(is_secret_key(part) for part in str(path).split("."))


def redact_value(value: str) -> str:
    """``value`` with secrets embedded in it (connection-string keys, signatures, URL passwords) masked.

    >>> redact_value("DefaultEndpointsProtocol=https;AccountKey=abc==;BlobEndpoint=x")
    'DefaultEndpointsProtocol=https;AccountKey=***;BlobEndpoint=x'
    >>> redact_value("https://user:pw@host:9000/p")
    'https://user:***@host:9000/p'
    """
    value = _IN_VALUE.sub(lambda m: m.group(1) + REDACTED, value)
    return _USERINFO.sub(lambda m: f"{m.group(1)}{m.group(2)}:{REDACTED}@", value)


def redact(value: Any, name: str = "") -> Any:
    """Plain copy of ``value`` (mappings -> dicts, sequences -> lists) with every secret replaced by ``"***"``:
    by key name (``name`` names ``value`` itself), below a secret key, or embedded in a string.

    >>> redact({"nested": [{"token": "t"}], "credentials": {"client_id": "c"}, "n": 3})
    {'nested': [{'token': '***'}], 'credentials': {'client_id': '***'}, 'n': 3}
    """
    return _redact(value, bool(name) and is_secret_key(name), {}, [])


def _redact(value: Any, secret: bool, memo: dict[tuple[int, bool], Any], hits: list[int]) -> Any:
    # ``memo``: a node reached twice (YAML aliases) is redacted once, so shared structures cost their size.
    if isinstance(value, (Mapping, list, tuple)):
        key = (id(value), secret)
        if key not in memo:
            if isinstance(value, Mapping):
                memo[key] = {str(k): _redact(v, secret or is_secret_key(str(k)), memo, hits)
                             for k, v in value.items()}
            else:
                memo[key] = [_redact(v, secret, memo, hits) for v in value]
        return memo[key]
    if secret and value not in (None, ""):
        hits.append(1)
        return REDACTED
    if isinstance(value, str):
        masked = redact_value(value)
        if masked != value:
            hits.append(1)
        return masked
    return value


def redact_uri(uri: str) -> str:
    """``uri`` without ``user:password@`` and without signatures or keys in its query string.

    >>> redact_uri("s3://AKIA:secret@bucket/data"), redact_uri("az://c/x?sv=2020&sig=abc")
    ('s3://***@bucket/data', 'az://c/x?sv=2020&sig=***')
    """
    text = _IN_TEXT.sub(lambda m: m.group(1) + REDACTED, uri)
    return _USERINFO.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)


def redact_override(text: str) -> str:
    """A command-line override (``key=value``, hydra's ``++workload.a.b=v``) with its secrets hidden:
    the whole value when the key names a secret, else secrets inside it, a mapping value included.

    >>> redact_override("++workload.storage.storage_options.secret_access_key=abc")
    '++workload.storage.storage_options.secret_access_key=***'
    >>> redact_override("++workload.reader.batch_size=8")
    '++workload.reader.batch_size=8'
    """
    key, sep, value = text.partition("=")
    if not sep:
        return text
    if is_secret_path(key):
        return f"{key}={REDACTED}"
    if value.lstrip().startswith(("{", "[")):
        return f"{key}={_redact_flow(value)}"
    return f"{key}={redact_value(value)}"


def _redact_flow(value: str) -> str:
    """A YAML flow mapping or list (``{secret_access_key: X}``) with its secrets hidden; the text as given
    when it holds none."""
    try:
        parsed = yaml.safe_load(value)
        hits: list[int] = []
        shown = _redact(parsed, False, {}, hits)
        if not hits:
            return value
        return yaml.safe_dump(shown, default_flow_style=True, sort_keys=False, width=1 << 30).strip()
    except (yaml.YAMLError, RecursionError, ValueError, TypeError):
        # Not YAML the config loader would take either; still hide ``name: value`` pairs that look secret.
        def pair(m: re.Match[str]) -> str:
            return m.group("name") + m.group("sep") + REDACTED if is_secret_key(m.group("name")) else m.group(0)
        return redact_value(_PAIR.sub(pair, value))


def secret_values(options: Mapping[str, Any]) -> tuple[str, ...]:
    """Every non-empty string in ``options`` (nested mappings too) that is a credential, longest first:
    what ``redact_message`` masks wherever it appears.

    >>> secret_values({"key": "AKIA", "secret": "abc123", "endpoint_url": "http://h", "more": {"token": "t"}})
    ('abc123', 'AKIA', 't')
    """
    found = {v for path, v in _leaves(options, "") if is_secret_path(path) and isinstance(v, str) and v}
    return tuple(sorted(found, key=len, reverse=True))


def _leaves(node: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, Any]]:
    for k, v in node.items():
        path = f"{prefix}{k}"
        if isinstance(v, Mapping):
            yield from _leaves(v, path + ".")
        else:
            yield path, v


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret value (4 characters or more), and any key, signature or URL
    password embedded in it, masked. Client libraries sometimes echo a request URL or a connection string.

    >>> scrub("could not sign with key hunter2", ["hunter2"])
    'could not sign with key ***'
    """
    for s in secrets:
        if s and len(s) >= _MIN_SECRET_CHARS:
            text = text.replace(s, REDACTED)
    return redact_uri(text)


def redact_message(error: BaseException | str, secrets: Iterable[str] = ()) -> str:
    """An exception's text (its type name when it has none) on one line, secrets masked as ``scrub`` does.

    >>> redact_message(ValueError("bad\\n AccountKey=abc;x"))
    'bad AccountKey=***;x'
    >>> redact_message(TimeoutError())
    'TimeoutError'
    """
    text = error if isinstance(error, str) else (str(error) or type(error).__name__)
    return scrub(" ".join(text.split()), secrets)
