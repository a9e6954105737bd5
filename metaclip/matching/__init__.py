"""MetaCLIP substring matching of texts against a metadata entry list, and the matcher's cache.

- matcher: spacing, KeyTable and Matcher (build, match, save and load one cache set);
- scripts: MetaCLIP 2's character classes (CJK-or-similar, punctuation) and entry padding;
- worldwide: WorldwideMatcher, MetaCLIP 2's matching of one language's list (same surface);
- integrity: when a cache set may be parsed (its sha256 manifest, who could have written it);
- cache: one matcher per metadata file per worker process (memory, disk cache, else build),
  worldwide matchers in a per-process LRU bounded by METACLIP_MATCHER_MEMORY_MB.
"""

from metaclip.matching.cache import (
    DEFAULT_MATCHER_MEMORY_MB,
    FORMAT_VERSION,
    MEMORY_ENV,
    WORLDWIDE_FORMAT_VERSION,
    automaton_path,
    default_cache_dir,
    get_matcher,
    get_worldwide_matcher,
    matcher_memory_budget,
    worldwide_matcher_path,
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
from metaclip.matching.scripts import (
    MATCHING_PUNCTUATION,
    cjk_or_similar_mask,
    is_cjk_or_similar,
    is_punctuation,
    spaced_entry,
)
from metaclip.matching.worldwide import WorldwideMatcher

__all__ = [
    "CHARS_TO_SPACE",
    "DEFAULT_BATCH_CHARS",
    "DEFAULT_MATCHER_MEMORY_MB",
    "FORMAT_VERSION",
    "MANIFEST_FORMAT",
    "MATCHING_PUNCTUATION",
    "MEMORY_ENV",
    "PUNCTS_TO_WRAP",
    "SEP",
    "SEP_STANDIN",
    "CacheError",
    "DamagedCacheError",
    "KeyTable",
    "Matcher",
    "UnsafeCacheError",
    "WORLDWIDE_FORMAT_VERSION",
    "WorldwideMatcher",
    "automaton_path",
    "cache_dir_problem",
    "cjk_or_similar_mask",
    "default_cache_dir",
    "get_matcher",
    "get_worldwide_matcher",
    "is_cjk_or_similar",
    "is_punctuation",
    "matcher_memory_budget",
    "spaced_entry",
    "spacing",
    "worldwide_matcher_path",
]
