"""The demo workspace `make run` loads on its first start: users, holders, sources, documents,
curated versions, a trained model and a takedown request. Apps never import it."""
