"""Events other apps react to without provenance importing them (the dashboards render a
version's cards when it is published)."""

from django.dispatch import Signal

# Sent inside the publishing transaction, with `version`; receivers defer work to on_commit.
version_published = Signal()
