"""A recipe's research stages: filters (language, quality), semantic deduplication and diverse
selection under a token budget, run in the recipe's order over the documents the governance
rules kept (curation.curation_plan: tombstones, licences, opt-outs, MinHash near-duplicates and
the held-out share come first and are not optional). Each document a stage leaves out is
recorded in the version's exclusions with its reason and a detail.

A recipe stays data: `stages_validate` checks the JSON (a wrong parameter is a ValidationError
naming `recipe.stages[i].field`) and fills in every default, seeds included, so that the stored
recipe alone reproduces the version.

Memory: the filters stream in batches; semantic deduplication and selection hold the kept
documents' embeddings (384 float32 each: 1.5 GB per 10⁶ documents). A kept document without an
embedding yet is embedded here and stored, so a rerun reads the same vectors.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
from django.core.exceptions import ValidationError
from django.db import connection

from provenance.engine import quality, selection
from provenance.models import Document
from provenance.models import VersionExclusion as Exclusion
from provenance.services.staging import Plan, copy_rows

Reason = Exclusion.Reason
BATCH = 5_000
TAG = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")  # a BCP 47 tag's shape


def _int(value: Any, where: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValidationError({where: f"must be an integer ≥ {low}"})
    return value


def _language(raw: dict[str, Any], where: str) -> dict[str, Any]:
    allow = raw.get("allow")
    if not isinstance(allow, list) or not allow or not all(
            isinstance(t, str) and TAG.match(t) for t in allow):
        raise ValidationError({f"{where}.allow": "must be a non-empty list of BCP 47 language "
                                                 "tags, e.g. [\"en\", \"fr-CA\"]"})
    keep = raw.get("keep_unknown", False)
    if not isinstance(keep, bool):
        raise ValidationError({f"{where}.keep_unknown": "must be true or false"})
    return {"allow": sorted({t.lower() for t in allow}), "keep_unknown": keep}


def _quality(raw: dict[str, Any], where: str) -> dict[str, Any]:
    try:
        return quality.quality_params(raw, field=where)
    except ValueError as exc:
        field, _, message = str(exc).partition(": ")
        raise ValidationError({field: message}) from exc


def _semdedup(raw: dict[str, Any], where: str) -> dict[str, Any]:
    threshold = raw.get("threshold", 0.95)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) \
            or not 0 < threshold <= 1:
        raise ValidationError({f"{where}.threshold": "must be a cosine similarity in (0, 1]"})
    return {"threshold": float(threshold),
            "clusters": _int(raw.get("clusters", 100), f"{where}.clusters", 1),
            "seed": _int(raw.get("seed", 0), f"{where}.seed")}


def _select(raw: dict[str, Any], where: str, sources: list[int]) -> dict[str, Any]:
    method = raw.get("method", "kcenter")
    if method not in selection.METHODS:
        raise ValidationError({f"{where}.method": f"must be one of "
                                                  f"{', '.join(selection.METHODS)}"})
    if "token_budget" not in raw:
        raise ValidationError({f"{where}.token_budget": "is required (tokens to select)"})
    out: dict[str, Any] = {"method": method,
                           "token_budget": _int(raw["token_budget"], f"{where}.token_budget", 1),
                           "seed": _int(raw.get("seed", 0), f"{where}.seed")}
    if method == "logdet":
        temperature = raw.get("temperature", 0.1)
        if isinstance(temperature, bool) or not isinstance(temperature, int | float) \
                or not 0 < temperature <= 10:
            raise ValidationError({f"{where}.temperature": "must be in (0, 10]"})
        out["temperature"] = float(temperature)
    mixture = raw.get("mixture")
    if mixture is not None:
        if not isinstance(mixture, dict) or not mixture:
            raise ValidationError({f"{where}.mixture": "must map source ids to weights"})
        weights: dict[str, float] = {}
        for key, weight in mixture.items():
            if not str(key).isdigit() or int(key) not in sources:
                raise ValidationError({f"{where}.mixture": f"{key!r} is not a source of this "
                                                           f"recipe"})
            if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
                raise ValidationError({f"{where}.mixture.{key}": "must be a weight ≥ 0"})
            weights[str(int(key))] = float(weight)
        if not sum(weights.values()):
            raise ValidationError({f"{where}.mixture": "needs a weight above 0"})
        out["mixture"] = dict(sorted(weights.items(), key=lambda kv: int(kv[0])))
    return out


def stages_validate(raw: Any, sources: list[int]) -> list[dict[str, Any]]:
    """The recipe's stages, checked, with every default filled in."""
    if not isinstance(raw, list):
        raise ValidationError({"recipe.stages": "must be a list of stages"})
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, stage in enumerate(raw):
        where = f"recipe.stages[{i}]"
        if not isinstance(stage, dict) or "stage" not in stage:
            raise ValidationError({where: "must be an object with a \"stage\""})
        kind, params = stage["stage"], {k: v for k, v in stage.items() if k != "stage"}
        if kind not in ALLOWED_KEYS:
            raise ValidationError({f"{where}.stage": f"must be one of {', '.join(ALLOWED_KEYS)}"})
        if kind in seen:
            raise ValidationError({f"{where}.stage": f"{kind} appears twice"})
        if "select" in seen:
            raise ValidationError({f"{where}.stage": "select must be the last stage"})
        seen.add(kind)
        allowed = ALLOWED_KEYS[kind]
        unknown = sorted(set(params) - allowed) if allowed is not None else []
        if unknown:
            known = ", ".join(sorted(allowed or ()))
            raise ValidationError({f"{where}.{unknown[0]}": f"not a parameter of {kind} "
                                                            f"({known})"})
        built = _select(params, where, sources) if kind == "select" else \
            BUILDERS[kind](params, where)
        out.append({"stage": kind, **built})
    return out


BUILDERS: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
    "language": _language, "quality": _quality, "semdedup": _semdedup,
}  # and select, which needs the recipe's sources
ALLOWED_KEYS: dict[str, set[str] | None] = {
    "language": {"allow", "keep_unknown"}, "quality": None,  # quality names its own fields
    "semdedup": {"threshold", "clusters", "seed"},
    "select": {"method", "token_budget", "seed", "temperature", "mixture"},
}


# Applying them


def _exclude(plan: Plan, rows: list[tuple[int, str, str]]) -> None:
    """Set (position, reason, detail) on the stage's rows, through a temporary table."""
    if not rows:
        return
    table = f"{plan.table}_out"
    plan.execute(f"CREATE TEMPORARY TABLE {table} (position bigint, reason varchar(32), "
                 f"detail text)")
    copy_rows(table, "position, reason, detail", rows)
    plan.execute(f"UPDATE {{plan}} p SET reason = o.reason, detail = o.detail FROM {table} o "
                 f"WHERE p.position = o.position")
    plan.execute(f"DROP TABLE {table}")


def _kept(plan: Plan, columns: str) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(f"""SELECT p.position, {columns} FROM {plan.table} p
                           JOIN provenance_document d ON d.id = p.document_id
                           WHERE p.reason IS NULL ORDER BY p.position""")
        return list(cursor.fetchall())


def language_matches(tag: str, allow: list[str]) -> bool:
    """RFC 4647 basic filtering: "en" takes "en", "en-GB" and "en-Latn-US"."""
    tag = tag.lower()
    return any(tag == a or tag.startswith(a + "-") for a in allow)


def _filter(plan: Plan, stage: dict[str, Any]) -> int:
    out: list[tuple[int, str, str]] = []
    if stage["stage"] == "language":
        for position, language in _kept(plan, "d.language"):
            if not language:
                if not stage["keep_unknown"]:
                    out.append((position, Reason.LANGUAGE, "language unknown"))
            elif not language_matches(language, stage["allow"]):
                out.append((position, Reason.LANGUAGE,
                            f"language {language} not in {', '.join(stage['allow'])}"))
    else:
        params = {k: v for k, v in stage.items() if k != "stage"}
        with connection.chunked_cursor() as cursor:
            cursor.execute(f"""SELECT p.position, d.text FROM {plan.table} p
                               JOIN provenance_document d ON d.id = p.document_id
                               WHERE p.reason IS NULL ORDER BY p.position""")
            while batch := cursor.fetchmany(BATCH):
                for position, text in batch:
                    failure = quality.judge(text, params)
                    if failure is not None:
                        out.append((position, Reason.QUALITY,
                                    f"{failure.rule}: {failure.detail}"))
    _exclude(plan, out)
    return len(out)


def document_vectors(document_ids: list[int]) -> np.ndarray:
    """The documents' stored embeddings, in order; those without one are embedded and stored."""
    from provenance.services.embeddings import embed_texts

    found: dict[int, np.ndarray] = {}
    for start in range(0, len(document_ids), BATCH):
        chunk = document_ids[start:start + BATCH]
        found.update({pk: np.asarray(vector) for pk, vector in Document.objects.filter(
            pk__in=chunk, embedding__isnull=False).values_list("pk", "embedding")})
    missing = [pk for pk in document_ids if pk not in found]
    for start in range(0, len(missing), BATCH):
        rows = list(Document.objects.filter(pk__in=missing[start:start + BATCH])
                    .values_list("pk", "text"))
        vectors, _ = embed_texts([text for _, text in rows])
        Document.objects.bulk_update([Document(pk=pk, embedding=v) for (pk, _), v in
                                      zip(rows, vectors, strict=True)], ["embedding"],
                                     batch_size=500)
        found.update({pk: v for (pk, _), v in zip(rows, vectors, strict=True)})
    matrix = np.asarray([found[pk] for pk in document_ids], dtype=np.float32).reshape(-1, 384)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)


def _semantic(plan: Plan, stage: dict[str, Any]) -> int:
    rows = _kept(plan, "p.document_id")
    if not rows:
        return 0
    positions = [r[0] for r in rows]
    docs = [r[1] for r in rows]
    found = selection.semantic_duplicates(document_vectors(docs), stage["threshold"],
                                          stage["clusters"], stage["seed"])
    _exclude(plan, [(positions[i], Reason.SEMANTIC_DUPLICATE,
                     f"cosine ≥ {stage['threshold']:g} to document {docs[j]} "
                     f"(cluster {int(found.clusters[i])})") for i, j in sorted(found.of.items())])
    return len(found.of)


def _choose(vectors: np.ndarray, costs: np.ndarray, budget: float,
            stage: dict[str, Any]) -> list[int]:
    if stage["method"] == "kcenter":
        return selection.kcenter_greedy(vectors, costs, budget, stage["seed"])
    if stage["method"] == "logdet":
        return selection.logdet_greedy(vectors, costs, budget, stage["seed"],
                                       stage["temperature"])
    return selection.random_fill(costs, budget, stage["seed"])


def _select_stage(plan: Plan, stage: dict[str, Any]) -> int:
    rows = _kept(plan, "p.document_id, p.source_id, d.token_estimate")
    if not rows:
        return 0
    positions = np.asarray([r[0] for r in rows])
    sources = np.asarray([r[2] for r in rows])
    costs = np.asarray([max(1, r[3]) for r in rows], dtype=np.float64)
    budget = stage["token_budget"]
    needs_vectors = stage["method"] != "random"
    vectors = document_vectors([r[1] for r in rows]) if needs_vectors else \
        np.zeros((len(rows), 1), dtype=np.float32)
    label = selection.METHODS[stage["method"]]
    out: list[tuple[int, str, str]] = []
    if "mixture" in stage:
        weights = {int(k): w for k, w in stage["mixture"].items()}
        total = sum(weights.values())
        for source in sorted(set(sources.tolist())):
            part = np.flatnonzero(sources == source)
            share = int(budget * weights.get(source, 0.0) / total)
            if share <= 0:
                out += [(int(positions[i]), Reason.NOT_SELECTED,
                         f"source {source} has no weight in the mixture") for i in part]
                continue
            picked = {int(part[i]) for i in _choose(vectors[part], costs[part], share, stage)}
            out += [(int(positions[i]), Reason.NOT_SELECTED,
                     f"outside source {source}'s {share:,} tokens ({label})")
                    for i in part if int(i) not in picked]
    else:
        chosen = set(_choose(vectors, costs, budget, stage))
        out = [(int(positions[i]), Reason.NOT_SELECTED, f"outside the {budget:,}-token "
                                                         f"budget ({label})")
               for i in range(len(rows)) if i not in chosen]
    _exclude(plan, out)
    return len(out)


APPLY: dict[str, Callable[[Plan, dict[str, Any]], int]] = {
    "language": _filter, "quality": _filter, "semdedup": _semantic, "select": _select_stage,
}


def stages_apply(plan: Plan, stages: list[dict[str, Any]]) -> dict[str, int]:
    """Run each stage over the plan's members, in order; documents each one left out."""
    return {stage["stage"]: APPLY[stage["stage"]](plan, stage) for stage in stages}
