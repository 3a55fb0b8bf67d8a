"""The record of a dataset version's document, as exports serve it and cards describe it."""

from __future__ import annotations

import json
from typing import Any

FORMATS = {"jsonl": "application/jsonlines", "parquet": "application/vnd.apache.parquet"}
COLUMNS = ("id", "sha256", "normalised_sha256", "text", "source", "license", "language",
           "external_id", "url", "metadata")
DESCRIPTIONS = {
    "id": "the document's id in this Trailmark",
    "sha256": "sha256 of the text's UTF-8 bytes, as submitted (the member hash of the manifest)",
    "normalised_sha256": "sha256 of the normalised text (Unicode NFC, whitespace folded), "
                         "which exact matching compares",
    "text": "the document's text as submitted (UTF-8; NUL characters dropped)",
    "source": "the registered source the version took the document from",
    "license": "that source's SPDX licence expression",
    "language": "BCP 47 tag the record declared (empty when unknown)",
    "external_id": "the record's own id in its source (empty when it had none)",
    "url": "the record's URL in its source (empty when it had none)",
    "metadata": "the record's other fields as it came (a JSON object; text in Parquet)",
}


def jsonl_line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
