"""Strict reading of JSON request bodies.

Flask's `get_json` is lenient where a clinical API must not be: it accepts NaN and Infinity, keeps the
last of two duplicate keys (so `{"age": 30, "age": "abc"}` silently means one of them) and answers a
bare 400 HTML page. Here each of those is a problem+json a client can act on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Flask, request
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from .errors import ApiProblem

JSON_TYPES = ("application/json",)


class _ServerInput:
    """The server's request body stream, where a body the server cannot parse is the client's error.

    gunicorn de-chunks `Transfer-Encoding: chunked` bodies while the application reads them, and raises its
    own parse errors (a malformed chunk size line, a missing chunk terminator) from that read: without this
    wrapper they reach the error handlers as unexpected exceptions (500). Here they are a 400. Connection
    errors (OSError) pass through: werkzeug treats those as a client that went away.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def _guarded(self, read: Callable[..., Any], *args: Any) -> Any:
        try:
            return read(*args)
        except OSError:
            raise
        except Exception:
            raise BadRequest("The request body is malformed (its chunked transfer coding cannot be read).") from None

    def read(self, size: int | None = -1) -> bytes:
        return self._guarded(self._stream.read, -1 if size is None else size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._guarded(self._stream.readline, -1 if size is None else size)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        return self._guarded(self._stream.readlines, -1 if hint is None else hint)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")


def init_app(app: Flask) -> None:
    """Wrap every request's body stream (see _ServerInput)."""
    inner = app.wsgi_app

    def guarded_input(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if "wsgi.input" in environ:
            environ["wsgi.input"] = _ServerInput(environ["wsgi.input"])
        return inner(environ, start_response)

    app.wsgi_app = guarded_input  # type: ignore[method-assign]


def _refuse_longer_streams(raw: bytes) -> None:
    """413 for a chunked body longer than the limit.

    Without a Content-Length, werkzeug reads a streamed body up to the limit and stops there silently, so
    a longer body would be parsed cut off (a misleading 400 "malformed JSON"); one byte more tells them apart.
    """
    limit = request.max_content_length
    streamed = request.content_length is None and limit is not None and len(raw) >= limit
    if streamed and request.input_stream.read(1):
        raise RequestEntityTooLarge()


class _Duplicate(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)  # in C; only a body with a duplicate key walks its pairs
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise _Duplicate(key)
            seen.add(key)
    return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


# An escaped UTF-16 surrogate (`\ud800`): valid JSON text, but alone it is no character, and a string
# holding one cannot be hashed, stored or sent on as UTF-8. Only bodies that contain such an escape walk
# their strings.
_SURROGATE_ESCAPE = re.compile(rb"\\[uU][dD][89a-fA-F]")


def _lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def require_json_content(types: tuple[str, ...] = JSON_TYPES) -> None:
    """415 unless the body is declared as (uncompressed, UTF-8) JSON of one of `types`."""
    mimetype = request.mimetype
    if mimetype not in types:
        got = f"`{mimetype}`" if mimetype else "no Content-Type"
        raise ApiProblem(
            415,
            "unsupported-media-type",
            "Unsupported Media Type",
            f"The body must be JSON sent with Content-Type: {' or '.join(types)} (got {got}).",
            headers={"Accept-Post": ", ".join(types)},
        )
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise ApiProblem(415, "unsupported-media-type", "Unsupported Media Type", "JSON must be UTF-8 (RFC 8259).")
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise ApiProblem(
            415, "unsupported-media-type", "Unsupported Media Type", "Compressed request bodies are not accepted."
        )


def read_json(types: tuple[str, ...] = JSON_TYPES) -> Any:
    """The parsed body; 415 for a non-JSON content type, 400 for anything that is not exactly one JSON value."""
    require_json_content(types)
    raw = request.get_data(cache=True)  # raises 413 beyond MAX_CONTENT_LENGTH
    _refuse_longer_streams(raw)
    if not raw.strip():
        raise ApiProblem(400, "malformed-json", "Malformed JSON", "The request body is empty; send a JSON object.")
    try:
        text = raw.decode("utf-8")
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except _Duplicate as exc:
        raise ApiProblem(
            400, "malformed-json", "Malformed JSON", f"The key `{exc}` appears twice in one object."
        ) from None
    except UnicodeDecodeError:
        raise ApiProblem(400, "malformed-json", "Malformed JSON", "The request body is not UTF-8 text.") from None
    except json.JSONDecodeError as exc:
        detail = f"The body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
        raise ApiProblem(400, "malformed-json", "Malformed JSON", detail) from None
    except (ValueError, RecursionError) as exc:
        # Integers beyond Python's digit limit, NaN/Infinity, or nesting too deep to parse.
        if isinstance(exc, RecursionError):
            reason = "it is nested too deeply"
        elif "digits" in str(exc):
            reason = "a number has too many digits"
        else:
            reason = str(exc)
        detail = f"The body is not acceptable JSON: {reason}."
        raise ApiProblem(400, "malformed-json", "Malformed JSON", detail) from None
    if _SURROGATE_ESCAPE.search(raw) and _lone_surrogate(value):
        raise ApiProblem(
            400,
            "malformed-json",
            "Malformed JSON",
            "A string holds an unpaired UTF-16 surrogate escape (such as \\ud800), which is not a character.",
        )
    return value
