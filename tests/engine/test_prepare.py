from provenance.engine.prepare import prepare_batch, prepare_batches
from provenance.engine.readers import Row
from tests.helpers import words


def _rows(n):
    return [Row(file="f", line=i + 1, text=words(i, 30 + i % 7), meta={"id": i}) for i in range(n)]


def test_a_batch_is_cut_at_its_rows_or_its_characters_whichever_comes_first():
    rows = _rows(50)
    sizes = [b.rows for b in prepare_batches(rows, iter(range(1, 99)), size=20, max_chars=10**9)]
    assert sizes == [20, 20, 10]
    chars = sum(len(r.text) for r in rows[:8])
    by_chars = [b.rows for b in prepare_batches(rows, iter(range(1, 99)), size=20,
                                                 max_chars=chars)]
    assert by_chars[0] == 8 and sum(by_chars) == 50 and max(by_chars) <= 9


def test_batches_prepared_in_processes_are_the_batches_prepared_here():
    rows = _rows(120)
    here = list(prepare_batches(rows, iter(range(1, 99)), size=25, skip=10))
    apart = list(prepare_batches(rows, iter(range(1, 99)), size=25, skip=10, processes=2))
    assert [b.rows for b in here] == [25, 25, 25, 25, 10]
    assert [(b.position, b.staged, b.fields) for b in apart] == [
        (b.position, b.staged, b.fields) for b in here]
    assert here[0].staged == prepare_batch(rows[10:35], 1).staged
