"""What the worker writes to its changelog and keyed topic is the JSON earlier workers wrote,
whatever JSON library Faust finds installed (it picks orjson when it can)."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from faust.stores.memory import Store as MemoryStore

from monitor.settings import Settings
from streams.app import Topology, build_topology
from streams.table_store import TableStore, murmur2, partition_for

SLOTS = (
    "rule-a\x1fcust-1",
    "règle\x1f客户",
    'quote"back\\slash',
    "tab\tnew\nline\x00nul\x7fdel",
    "emoji \U0001f600 and a lone \ud800 surrogate",
    "",
)


@pytest.fixture(scope="module")
def topo(tmp_path_factory: pytest.TempPathFactory) -> Topology:
    data = Path(tmp_path_factory.mktemp("data"))
    return build_topology(Settings(bootstrap_servers="127.0.0.1:1", data_dir=data))


def test_changelog_keys_are_the_json_earlier_workers_wrote(topo: Topology) -> None:
    table = topo.state
    topic = table.changelog_topic
    for slot in SLOTS:
        written = json.dumps(slot).encode()  # "r\u00e8gle...": what the changelog already holds
        assert topic.prepare_key(slot, table.key_serializer)[0] == written
        assert table._raw_key(slot) == written
    for value in (b'{"r":"x","s":{}}', b"\xff\x00 not json"):
        # what Faust would send for a value is the bytes themselves, which the table sends
        assert topic.prepare_value(value, table.value_serializer)[0] == value


def test_keyed_records_carry_wide_integers_and_nan_unchanged(topo: Topology) -> None:
    """orjson refuses integers beyond 64 bits and writes NaN as null; a forwarded event's data
    must arrive as `json` read it from the input record."""
    item: dict[str, Any] = {"k": "c1", "r": ["rule"], "e": {"data": {"big": 2**70, "x": math.nan}}}
    keyed = topo.keyed
    raw = keyed.prepare_value({"batch": [item]}, keyed.value_serializer)[0]
    assert raw == json.dumps({"batch": [item]}).encode()
    back = keyed.app.serializers.loads_value(None, raw, serializer=keyed.value_serializer)
    data = back["batch"][0]["e"]["data"]
    assert data["big"] == 2**70
    assert math.isnan(data["x"])


def test_the_store_reads_what_the_table_holds_and_none_for_a_new_slot(topo: Topology) -> None:
    store = TableStore(topo.state)
    data = topo.state.data
    assert type(data) is MemoryStore  # the default store, whose dict is read directly
    data["rule-a\x1fcust-9"] = b'{"p":0}'  # as the write-behind task writes it
    assert store.get(0, "rule-a\x1fcust-9") == b'{"p":0}'
    assert store.get(0, "rule-a\x1fcust-unknown") is None
    store.put(0, "rule-a\x1fcust-9", b'{"p":1}')  # pending until flushed: reads see it
    assert store.get(0, "rule-a\x1fcust-9") == b'{"p":1}'
    del data["rule-a\x1fcust-9"]


def test_keys_go_to_the_partition_kafkas_default_partitioner_picks() -> None:
    """`partition_for` is the partition any Kafka client's default partitioner gives a key
    (the Java client's own figures for 1,000 partitions, and aiokafka's `murmur2` on keys of
    every length up to 300 bytes, past the 255 the precompiled unpackers cover)."""
    thousand = list(range(1000))
    java = {"": 681, "a": 524, "ab": 434, "abc": 107, "123456789": 566, "\x00 ": 742}
    assert {key: partition_for(key, thousand) for key in java} == java
    rng = random.Random(7)
    for length in range(301):
        data = rng.randbytes(length)
        assert murmur2(data) == aiokafka_murmur2(data), data
    assert partition_for("cust-1", [3, 5, 8]) in (3, 5, 8)
