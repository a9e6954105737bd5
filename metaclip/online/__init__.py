"""Online balancing in the training loader ("Demystifying CLIP Data", section 3.4): a curation's
matched pool (metaclip.curation.pool) and its global counts, and a new balanced sample drawn
from them every epoch.

- decide: the keep/drop decision of a pair for (seed, epoch), vectorised (OnlineBalance);
- pool: the pool's manifest, as a training job reads it;
- split: the pool's rows or shards among distributed ranks and DataLoader workers, and the
  position each has reached (resuming mid-epoch);
- torch_pool: a PyTorch IterableDataset over the pool's Parquet (needs torch);
- webdataset_stage: a webdataset pipeline stage over img2dataset's shards (needs webdataset).

The last two import their framework; install `metaclip-prefect[online]`.
"""
