"""A dataset version in the formats people use: a Hugging Face dataset card, Croissant 1.1
JSON-LD with the RAI fields, and an SPDX 3.0 document with the Dataset profile."""
