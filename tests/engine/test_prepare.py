import subprocess
import sys
from pathlib import Path

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


def test_a_script_whose_processes_cannot_start_still_gets_every_batch(tmp_path):
    """Spawned processes import the parent's main module again; a script that works at import
    time makes each of them fail (they may not start processes while starting), which breaks
    the pool: the batches are then prepared in the script's own process, all of them."""
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})\n"
        "from provenance.engine.prepare import prepare_batches\n"
        "from provenance.engine.readers import Row\n"
        "rows = [Row(file='f', line=i, text=f'text number {i} of the script') for i in range(90)]\n"
        "batches = list(prepare_batches(rows, iter(range(1, 99)), size=20, processes=2))\n"
        "print(sum(b.rows for b in batches), sum(len(b.staged) for b in batches))\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[-2] == "90 90"
    assert "preparing here" in out.stderr


def _prepare_in_a_daemon(queue):  # a module-level function: the child is spawned
    rows = _rows(60)
    batches = list(prepare_batches(rows, iter(range(1, 99)), size=20, processes=2))
    queue.put((sum(b.rows for b in batches), sum(len(b.staged) for b in batches)))


def test_a_daemonic_process_prepares_every_batch_itself():
    """A Celery prefork pool process is daemonic and may not start processes ('daemonic
    processes are not allowed to have children'): a whole-file ingest on a worker once failed
    after its first batch. It now prepares the batches in its own process."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_prepare_in_a_daemon, args=(queue,), daemon=True)
    child.start()
    child.join(120)
    assert child.exitcode == 0
    assert queue.get(timeout=5) == (60, 60)
