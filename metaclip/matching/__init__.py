"""MetaCLIP substring matching of texts against a metadata entry list, and the matcher's cache.

- matcher: spacing, KeyTable and Matcher (build, match, save and load one cache set);
- integrity: when a cache set may be parsed (its sha256 manifest, who could have written it);
- cache: one matcher per metadata file per worker process (memory, disk cache, else build).
"""

from metaclip.matching.cache import (
    FORMAT_VERSION,
    automaton_path,
    default_cache_dir,
    get_matcher,
)
from metaclip.matching.integrity import (
    MANIFEST_FORMAT,
    CacheError,
    DamagedCacheError,
    UnsafeCacheError,
    cache_dir_problem,
)
from metaclip.matching.matcher import (
    CHARS_TO_SPACE,
    DEFAULT_BATCH_CHARS,
    PUNCTS_TO_WRAP,
    SEP,
    SEP_STANDIN,
    KeyTable,
    Matcher,
    spacing,
)

__all__ = [
    "CHARS_TO_SPACE",
    "DEFAULT_BATCH_CHARS",
    "FORMAT_VERSION",
    "MANIFEST_FORMAT",
    "PUNCTS_TO_WRAP",
    "SEP",
    "SEP_STANDIN",
    "CacheError",
    "DamagedCacheError",
    "KeyTable",
    "Matcher",
    "UnsafeCacheError",
    "automaton_path",
    "cache_dir_problem",
    "default_cache_dir",
    "get_matcher",
    "spacing",
]
