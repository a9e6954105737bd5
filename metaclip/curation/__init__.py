"""Curation: matched pairs to a balanced set, as plain functions over a batch of files or a bucket.

Tasks in tasks/ call these; each takes and returns small JSON-able values (URIs, counts, stats)
and does its bulk work through files, so results are cheap to store and to pass around.

Stages, one module each: batch.process_batch (extract, match, split by uuid bucket; a manifest
commits the batch) -> dedup.process_bucket (dedup across batches, exclude earlier dumps, count)
-> reduce.reduce_counts (tree) -> sample.sample_bucket (one text per image, kept with MetaCLIP's
probability, balance). plan fixes a run's inputs, batches and buckets before any of them;
partition and counts are the bucket and count formats; record and completion are what a run
leaves for rebalancing and for a rerun; crawls expands a Common Crawl dump to its WAT files.
The worldwide (MetaCLIP 2) recipe runs through the same stages: worldwide holds its steps
(languages, matching per language, thresholds as data), thresholds its per-language t.

Import the stage modules themselves: this package imports nothing, so the configuration
(metaclip.config), which needs balance's and crawls' constants, can be imported from here.
"""
