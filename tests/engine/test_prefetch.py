import threading

import pytest

from provenance.engine.prefetch import Prefetch


def test_items_arrive_in_order():
    with Prefetch(iter(range(100)), depth=3) as items:
        assert list(items) == list(range(100))


def test_a_producer_error_is_raised_to_the_consumer_at_its_place():
    def source():
        yield 1
        yield 2
        raise ValueError("bad row")

    seen = []
    with pytest.raises(ValueError, match="bad row"), Prefetch(source()) as items:
        for item in items:
            seen.append(item)
    assert seen == [1, 2]


def test_leaving_early_stops_the_producer():
    produced = []

    def endless():
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    before = threading.active_count()
    with Prefetch(endless(), depth=2) as items:
        assert next(items) == 0
    assert threading.active_count() == before
    assert len(produced) < 10  # bounded read-ahead, not the whole stream
