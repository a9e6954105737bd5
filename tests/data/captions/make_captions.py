"""Cut the caption subsets in this folder from the full files (see PROVENANCE.txt).

coco_val2017_5000.txt: for each of the 5,000 COCO val2017 images, its caption with the lowest
    annotation id, in image-id order.
cc3m_val_5000.txt: the first 5,000 captions of the CC3M validation TSV, in file order.
One caption per line, UTF-8; white-space runs (83 COCO captions contain a line break) become one
space and ends are stripped -- the only change made to the text.

Run: python tests/data/captions/make_captions.py [SOURCE_DIR]  (default /work/shared/data/captions)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
COUNT = 5000


def clean(caption: str) -> str:
    return " ".join(caption.split())


def coco_captions(path: Path) -> list[str]:
    annotations = json.loads(path.read_text(encoding="utf-8"))["annotations"]
    first: dict[int, tuple[int, str]] = {}
    for ann in annotations:
        image, ann_id = ann["image_id"], ann["id"]
        if image not in first or ann_id < first[image][0]:
            first[image] = (ann_id, ann["caption"])
    return [clean(first[image][1]) for image in sorted(first)][:COUNT]


def cc3m_captions(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [clean(line.split("\t", 1)[0]) for line in lines[:COUNT]]


def write(name: str, captions: list[str]) -> None:
    assert len(captions) == COUNT and all(captions), name
    (HERE / name).write_text("\n".join(captions) + "\n", encoding="utf-8")
    print(f"wrote {name}: {len(captions)} captions")


def main() -> None:
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data/captions")
    write("coco_val2017_5000.txt", coco_captions(source / "coco_captions_val2017.json"))
    write("cc3m_val_5000.txt", cc3m_captions(source / "cc3m_Validation_GCC-1.1.0-Validation.tsv"))


if __name__ == "__main__":
    main()
