"""Retrieval's pure parts: cutting documents into chunks, and fusing ranked lists. No Django."""
