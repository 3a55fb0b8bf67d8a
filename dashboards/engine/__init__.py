"""Pure renderers behind the pages and cards: data in, documents out; no Django."""
