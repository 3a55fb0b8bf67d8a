"""Events other apps react to without benchmarks importing them (the dashboards render the
entries' cards again when a run's leaderboard is published)."""

from django.dispatch import Signal

# Sent inside the finalizing transaction, with `versions` (the entries' versions); receivers
# defer work to on_commit.
benchmark_finished = Signal()
