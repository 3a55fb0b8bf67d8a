"""The platform kernel's contracts: `core` imports no app, and who may do what is written in one
table (core/permissions.py) that every API, page and service asks by capability."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied

from core.permissions import GRANTS, Capability, Role, can, require, roles_with

ROOT = Path(__file__).resolve().parents[1]
APPS = ("provenance", "attribution", "takedowns", "retrieval", "benchmarks", "dashboards",
        "config", "demo")


def modules(*folders: str) -> list[Path]:
    return [p for folder in folders for p in (ROOT / folder).rglob("*.py")
            if "migrations" not in p.parts]


def test_core_imports_no_app():
    for path in modules("core"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not [n for n in names if n.split(".")[0] in APPS], (path, names)


def test_the_ledger_imports_run_one_way():
    """proofs builds on append; append never imports proofs (no import circle)."""
    source = (ROOT / "provenance" / "ledger" / "append.py").read_text()
    imported = [node.module for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.ImportFrom)]
    assert not [m for m in imported if m and m.startswith("provenance.ledger")]
    assert not [m for m in imported if m and "services" in m]


def test_no_private_name_is_imported_from_another_module():
    """`from x import _name` across modules means a helper that should be public (or is used
    where it should not be)."""
    ours = (*APPS, "core", "tests")
    found = []
    for path in modules(*APPS, "core", "tests", "bench"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and \
                    node.module.split(".")[0] in ours:
                found += [f"{path.relative_to(ROOT)}: {node.module}.{a.name}"
                          for a in node.names if a.name.startswith("_")]
    assert found == []


def _is_role(node: ast.AST) -> bool:
    """Role.X or User.Role.X"""
    return isinstance(node, ast.Attribute) and (
        (isinstance(node.value, ast.Name) and node.value.id == "Role")
        or (isinstance(node.value, ast.Attribute) and node.value.attr == "Role"))


def test_no_set_of_roles_is_written_outside_the_permissions_table():
    """A collection of two or more roles, or a set of roles added to another, anywhere in the
    apps is a hand-written permission."""
    found = []
    for path in modules(*APPS):
        for node in ast.walk(ast.parse(path.read_text())):
            roles = sum(_is_role(e) for e in node.elts) \
                if isinstance(node, ast.Set | ast.List | ast.Tuple) else 0
            widened = isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr) and any(
                isinstance(side, ast.Set) and any(map(_is_role, side.elts))
                for side in (node.left, node.right))
            if roles >= 2 or widened:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def test_every_capability_has_roles_and_staff_hold_every_one():
    assert set(GRANTS) == set(Capability)
    for capability in Capability:
        assert roles_with(capability)
        assert Role.ADMIN in GRANTS[capability]
        if capability is not Capability.ADMINISTER:
            assert Role.CURATOR in GRANTS[capability]


def test_require_answers_by_the_table(django_user_model):
    researcher = django_user_model(username="r", role=Role.RESEARCHER)
    holder = django_user_model(username="h", role=Role.RIGHTS_HOLDER)
    assert can(researcher, Capability.TRAIN) and not can(holder, Capability.TRAIN)
    assert can(holder, Capability.FILE_TAKEDOWN) and not can(researcher, Capability.FILE_TAKEDOWN)
    require(researcher, Capability.READ_ALL)
    with pytest.raises(PermissionDenied, match="takedown"):
        require(researcher, Capability.MOVE_TAKEDOWN, "only staff move a takedown")
    superuser = django_user_model(username="s", role=Role.RESEARCHER, is_superuser=True)
    assert can(superuser, Capability.ADMINISTER)

    class Anonymous:
        is_authenticated = False

    assert not can(Anonymous(), Capability.SIGN_IN)


def test_no_module_of_the_platform_is_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in modules(*APPS, "core")
            if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def _import_graph() -> dict[str, set[str]]:
    """Module -> the modules of the platform it imports (at any level: lazy imports count)."""
    paths = {}
    for path in modules(*APPS, "core"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        paths[name] = path

    def resolve(module: str) -> str:
        while module and module not in paths:
            module = module.rpartition(".")[0]
        return module

    graph: dict[str, set[str]] = {name: set() for name in paths}
    for name, path in paths.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in paths
                           else node.module for a in node.names]
            else:
                continue
            for target in map(resolve, targets):
                # a package's own modules importing each other through it are not a circle
                if target and target != name and not name.startswith(target + "."):
                    graph[name].add(target)
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_circle_but_the_lazy_service_and_task_pairs():
    """A service enqueues its task (a lazy import of the app's tasks module) and the task calls
    the service: that pair is the only circle allowed."""
    graph = _import_graph()
    assert _circles(graph), "the check must see the service <-> task circles it allows"
    for name, targets in graph.items():
        graph[name] = {t for t in targets if not (t.endswith(".tasks") and (
            ".services." in name or name.startswith("core.")))}
    assert _circles(graph) == []


def test_migrations_import_no_app_code():
    """A migration is frozen in time: app code it imported could change what it does later."""
    ours = (*APPS, "core")
    found = []
    for path in ROOT.glob("*/migrations/*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in ours]
    assert found == []


def test_vector_indexes_are_built_concurrently():
    """An HNSW or IVFFlat index over a table in use is built with AddIndexConcurrently in a
    non-atomic migration, so writes go on while it builds (the first one, 0006, was made while
    the table was new)."""
    from django.contrib.postgres.operations import AddIndexConcurrently
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.operations import AddIndex
    from pgvector.django import HnswIndex, IvfflatIndex

    blocking, concurrent = [], []
    for key, migration in MigrationLoader(None, ignore_no_migrations=True) \
            .disk_migrations.items():
        for op in migration.operations:
            if isinstance(op, AddIndexConcurrently):
                assert not migration.atomic, key
                concurrent.append(key)
            elif isinstance(op, AddIndex) and isinstance(op.index, (HnswIndex, IvfflatIndex)):
                blocking.append(key)
    assert blocking == [("provenance", "0006_document_embedding_hnsw")]
    assert ("provenance", "0012_document_embedding_pending") in concurrent
