"""`stdjson`: the JSON codec the worker's keyed topic and state table keys use.

Faust's own `json` codec switches to orjson whenever orjson is installed (cxmon decodes events
with it), and orjson refuses integers beyond 64 bits and writes NaN and Infinity as null: an
event forwarded through the keyed topic with such a value in its data would fail to send or
arrive changed. This codec is the one Faust used before, Python's `json` with Faust's encoder,
so the keyed records and the changelog keys are byte for byte what they always were (a
changelog written by an earlier worker keeps its keys).
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii
from typing import Any

from faust.serializers import codecs
from faust.utils.json import JSONEncoder

NAME = "stdjson"


class StdJson(codecs.Codec):
    """JSON through Python's `json` module, whatever else is installed."""

    def _dumps(self, obj: Any) -> bytes:
        return json.dumps(obj, cls=JSONEncoder).encode("utf-8")

    def _loads(self, s: bytes) -> Any:
        return json.loads(s)


def str_bytes(text: str) -> bytes:
    """What `StdJson` writes for a str (`json` writes a str alone with its ASCII encoder), without
    Faust's serialiser around it."""
    return encode_basestring_ascii(text).encode()


codecs.register(NAME, StdJson())
