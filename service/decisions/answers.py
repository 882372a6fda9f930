"""How a decision record holds its answer: the full decision's bytes, compressed, with a format marker.

Format 1 (records written before migration 0007): the `decision` column holds the canonical JSON text
of the answer (sorted keys, ASCII), a second encoding made only for the log. Format 2: the `answer`
column holds the full decision's bytes (service/engine/answer.py `encode`), which the JSON API sends
as they are when the full view is asked for (the default view is a compact encoding of the same decision),
compressed with Zstandard using the text of the decision's ruleset revision as a raw-content
dictionary, and `decision` is empty. An answer is mostly the revision's own texts (labels, summaries,
evidence, citations), so it shrinks to a few hundred bytes beyond what is particular to the patient
(about 3 KB for a 26 KB answer; plain zlib leaves 10 KB). The revision's text is in the log too
(`ruleset_revisions.source_text`, covered by its sha256), so a record is read back from stored bytes
alone. The hash chain covers the SHA-256 of the uncompressed bytes (chain.py): the compression level
may change freely, only what a blob decompresses to is hashed.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import zstandard

TEXT = 1  # `decision` holds canonical JSON text
COMPRESSED = 2  # `answer` holds zstd(answer bytes as sent; dictionary: the revision's source text)
CURRENT = COMPRESSED
LEVEL = 3  # level 1 leaves twice the bytes; higher levels cost more time than they save space
MAX_ANSWER = 64 * 1024 * 1024  # a stored blob never inflates past this (a tampered one could try)
_CACHED = 8  # revisions whose compressors a thread keeps

Dictionary = Callable[[str], bytes | None]  # revision sha256 -> its source text, or None if unknown


class BadAnswer(ValueError):
    """A stored answer that cannot be read back (corrupt blob, unknown format, revision text missing)."""


_local = threading.local()  # zstandard's (de)compressors are not for concurrent use: one set per thread


def _codec(kind: str, sha256: str, source: bytes) -> Any:
    cache: OrderedDict[tuple[str, str], Any] = _local.__dict__.setdefault("cache", OrderedDict())
    key = (kind, sha256)
    codec = cache.get(key)
    if codec is None:
        d = zstandard.ZstdCompressionDict(source, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        if kind == "c":
            d.precompute_compress(level=LEVEL)
            codec = zstandard.ZstdCompressor(level=LEVEL, dict_data=d, write_content_size=True)
        else:
            codec = zstandard.ZstdDecompressor(dict_data=d, max_window_size=1 << 27)
        cache[key] = codec
        if len(cache) > 2 * _CACHED:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return codec


def pack(answer: bytes, sha256: str, source: bytes) -> bytes:
    """The blob to store for an answer given by the revision `sha256` whose source text is `source`."""
    return _codec("c", sha256, source).compress(answer)


def unpack(blob: bytes, sha256: str, source: bytes) -> bytes:
    try:
        return _codec("d", sha256, source).decompress(blob, max_output_size=MAX_ANSWER)
    except zstandard.ZstdError as exc:
        raise BadAnswer(f"the stored answer does not decompress: {exc}") from None


def digest(answer: bytes) -> str:
    return hashlib.sha256(answer).hexdigest()


def record_format(row: Mapping[str, Any]) -> int:
    return int(row.get("record_format") or TEXT)


def answer_bytes(row: Mapping[str, Any], dictionary: Dictionary) -> bytes:
    """The stored answer of a record, as bytes of JSON, whatever the record's format."""
    fmt = record_format(row)
    if fmt == TEXT:
        return str(row["decision"]).encode("utf-8")
    if fmt == COMPRESSED:
        blob, sha256 = row.get("answer"), str(row["ruleset_sha256"])
        if blob is None:
            raise BadAnswer("the record has no stored answer")
        source = dictionary(sha256)
        if source is None:
            raise BadAnswer(f"the log holds no text of revision {sha256[:12]} to read the answer with")
        return unpack(bytes(blob), sha256, source)
    raise BadAnswer(f"unknown record format {fmt}")


def answer_json(row: Mapping[str, Any], dictionary: Dictionary) -> Any:
    """The stored answer, decoded."""
    return json.loads(answer_bytes(row, dictionary))
