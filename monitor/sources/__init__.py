"""Source mappings: raw departmental topics read as events (docs/sources.md).

`load_sources` reads and compiles mapping files; `monitor.events.mapping.evaluate` runs one per
record; `monitor.sources.mappingtests` runs the mapping tests (`*.test.yaml` with `source_files:`).
"""

from monitor.sources.loader import SourceLoad, is_mapping_file, load_sources, mapping_files

__all__ = ["SourceLoad", "is_mapping_file", "load_sources", "mapping_files"]
