"""Write a run's data card and publish it, plots embedded, as an artifact of the calling run."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson
from prefect.artifacts import create_markdown_artifact

from metaclip.io import storage
from metaclip.io.transient import is_transient
from metaclip.reporting import datacard
from metaclip_prefect.tasks.artifacts import artifact_key, location, publish, run_logger
from metaclip_prefect.tasks.retry import RETRIES, RETRY_DELAYS

T = TypeVar("T")

# Past this many characters of embedded PNG the artifact links the files instead. Prefect's
# server sets no limit on artifact data (3.8: a JSON column; only events are capped, at 1.5 MB,
# and an artifact's event does not carry its data), but a proxy before the API often refuses
# request bodies over 1 MB (nginx's default client_max_body_size).
MAX_EMBEDDED_CHARS = 900_000


def with_retries(fn: Callable[[], T]) -> T:
    """fn(), again after each transient I/O error (throttling, 5xx, resets) as the I/O tasks are
    (tasks/retry.py: RETRIES times, METACLIP_RETRY_DELAYS apart); other errors at once."""
    for attempt, delay in enumerate([*RETRY_DELAYS[:RETRIES], None]):
        try:
            return fn()
        except Exception as exc:
            if delay is None or not is_transient(exc):
                raise
            run_logger().warning("data card, try %d: %s; again in %gs", attempt + 1, exc, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def card_artifact_markdown(
    card: dict[str, Any], blobs: dict[str, bytes], written: dict[str, str]
) -> str:
    """The card with its plots as data: URIs (links to the written files if too large)."""
    images = datacard.embedded_images(blobs)
    if sum(map(len, images.values())) > MAX_EMBEDDED_CHARS:
        run_logger().warning("data card plots too large to embed; the artifact links the files")
        images = {name: written[file] for name, file in datacard.card_plot_files(card).items()
                  if file in written}
    where = location(datacard.datacard_dir(card["output"]))
    return datacard.render_markdown(card, images) + f"\nFiles: {where} (datacard.json, PNGs).\n"


def description(card: dict[str, Any]) -> str:
    """The artifact's one line: the output and the card's t (t_en for a worldwide run)."""
    t = card.get("t")
    name = "t_en" if card.get("recipe") == "worldwide" else "t"
    return f"Data card of {card['output']} at {name}={'?' if t is None else format(t, 'g')}"


def publish_datacard(
    output: str,
    t: float,
    targets: Sequence[float] = (),
    success_rate: float = 0.9,
    storage_options: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Write <output>/datacard/{datacard.json, datacard.md, *.png}; publish the card as Markdown.

    A plain function: the artifact (key artifact_key("datacard", output)) attaches to the calling
    flow run; outside a run the files are written and nothing is published. The artifact embeds
    both plots as data:image/png;base64 URIs, so the UI shows them whether the output is local or
    on S3 (its files are out of the browser's reach either way; Prefect 3.8's UI lets
    `data:image/` through its Markdown sanitizer for img src); datacard.md beside the PNGs keeps
    relative links. The PNGs are 110 dpi, 45 to 80 kB each (measured for a 60-entry test card and
    a 500k-entry one), so the artifact is about 170 to 200 kB of Markdown: the server stores it as
    it is, and a browser shows it at once.
    Returns the written files' URIs by name.
    """
    opts = storage_options or {}

    def write() -> tuple[dict[str, Any], dict[str, bytes], dict[str, str]]:
        run = datacard.load_run(output, **opts)
        card = datacard.build_datacard(
            run, t, datacard.candidate_source(output, **opts), targets, success_rate
        )
        blobs = datacard.render_card(run, card)
        return card, blobs, datacard.write_files(blobs, datacard.datacard_dir(output), **opts)

    card, blobs, written = with_retries(write)
    publish(create_markdown_artifact, markdown=card_artifact_markdown(card, blobs, written),
            key=artifact_key("datacard", output), description=description(card))
    return written


def republish_datacard(output: str, storage_options: dict[str, Any] | None = None) -> bool:
    """Publish the card a finished run wrote, as it is (a rerun with nothing to do writes
    nothing, so its card files keep the identities complete.json recorded). False when the
    output has no card to show."""
    opts = storage_options or {}
    folder = datacard.datacard_dir(output)

    def read(name: str) -> bytes:
        return with_retries(lambda: storage.read_bytes(storage.join(folder, name), **opts))

    try:
        card = {**orjson.loads(read("datacard.json")), "output": output}
        names = datacard.card_plot_files(card).values()  # the plots this card has
        blobs = {name: read(name) for name in names}
    except (FileNotFoundError, orjson.JSONDecodeError):
        return False
    uris = {name: storage.join(folder, name) for name in ["datacard.json", *names]}
    publish(create_markdown_artifact, markdown=card_artifact_markdown(card, blobs, uris),
            key=artifact_key("datacard", output), description=description(card))
    return True
