"""The state table's changelog records are the ones Faust would write (recovery reads them)."""

from __future__ import annotations

import faust

from streams.table_store import StateTable


def test_changelog_keys_and_values_are_faust_own_serialisation() -> None:
    app = faust.App("cxmon-unit-table", broker="kafka://127.0.0.1:1")
    table = app.tables.add(
        StateTable(app, name="cx-state", default=None, key_type=str, value_type=bytes, partitions=4)
    )
    topic = table.changelog_topic
    for slot in ("rule-a\x1fcust-1", "règle\x1f客户", 'quote"back\\slash'):
        faust_key = topic.prepare_key(slot, table.key_serializer)[0]
        assert table._raw_key(slot) == faust_key
        assert table._raw_key(slot) == faust_key  # cached, still the same
    for value in (b'{"r":"x","s":{}}', b"\xff\x00 not json"):
        assert table._raw(value) == topic.prepare_value(value, table.value_serializer)[0]
