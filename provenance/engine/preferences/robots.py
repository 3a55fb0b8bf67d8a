"""robots.txt (RFC 9309) and Spawning's ai.txt, read for the two uses.

Three things in a robots.txt bear on them:

* **AI user-agents' crawl rules.** A crawler's operator says what its fetches are for; a site that
  disallows a training crawler at the source's path has refused that crawler's use (a reading the
  EU's TDM opt-out practice shares). `AGENTS` lists each token with its operator's stated purpose:
  training crawlers decide *train*, answer-time fetchers decide *ai_input*. Being allowed to crawl
  says nothing about use (draft-ietf-aipref-attach §3.1), so an allow makes no term. A `*` group
  that disallows the path disallows every agent in the table, and says so.
* **`Content-Usage: <path> <prefs>`** rules (draft-ietf-aipref-attach §3): the longest matching
  path's preferences, in the AI-preferences format (read by `vocab.read_aipref`).
* **`Content-Signal: <signals>`** lines (Cloudflare's Content Signals Policy, CC0).

Extension rules are read from the `*` group and from the groups of the agents in `AGENTS`, and
combined most-restrictively: a reader of this table trains or grounds models whatever its
crawler's token. Allow/Disallow are protego's (wildcards, `$`, percent-encoding, longest match).
Crawl rules for agents outside the table are not read: they are not statements about AI use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protego import Protego

from provenance.engine.preferences import Pref, Reading, Term, pattern_covers
from provenance.engine.preferences.vocab import read_aipref, read_content_signal

# Token -> the uses its fetches serve, from each operator's crawler documentation (as of
# 2026-11). "train": collects training data. "ai_input": fetches or indexes pages to put them in
# front of a model answering someone (retrieval, grounding, AI search answers).
AGENTS: dict[str, tuple[str, ...]] = {
    "GPTBot": ("train",),                      # OpenAI: training
    "ChatGPT-User": ("ai_input",),             # OpenAI: fetches for a user's conversation
    "OAI-SearchBot": ("ai_input",),            # OpenAI: pages surfaced in ChatGPT answers
    "ClaudeBot": ("train",),                   # Anthropic: training
    "anthropic-ai": ("train",),                # Anthropic: the earlier training token
    "Claude-User": ("ai_input",),              # Anthropic: fetches for a user's question
    "Claude-SearchBot": ("ai_input",),         # Anthropic: search for Claude's answers
    "Google-Extended": ("train", "ai_input"),  # Google: Gemini training and grounding
    "Google-CloudVertexBot": ("ai_input",),    # Google: Vertex AI agents' fetches
    "Applebot-Extended": ("train",),           # Apple: foundation-model training
    "CCBot": ("train",),                       # Common Crawl: the corpus most models train on
    "meta-externalagent": ("train",),          # Meta: training
    "Bytespider": ("train",),                  # ByteDance: training
    "cohere-training-data-crawler": ("train",),
    "AI2Bot": ("train",),                      # Allen Institute: open training corpora
    "Amazonbot": ("train",),                   # Amazon: may train Amazon's models
    "PerplexityBot": ("ai_input",),            # Perplexity: the index its answers cite
    "Perplexity-User": ("ai_input",),          # Perplexity: fetches for a user's question
    "DuckAssistBot": ("ai_input",),            # DuckDuckGo: AI-assisted answers
    "MistralAI-User": ("ai_input",),           # Mistral: fetches for Le Chat's answers
}

# Text as Spawning's ai.txt generator names it (one Disallow per extension).
TEXT_EXTENSIONS = ("txt", "pdf", "doc", "docx", "odt", "rtf", "html", "htm", "md", "epub", "xml",
                   "json", "csv", "tex")
KNOWN_RULES = {"user-agent", "allow", "disallow", "sitemap", "crawl-delay", "host",
               "request-rate", "visit-time", "clean-param", "noindex", "content-usage",
               "content-signal"}


@dataclass
class Group:
    agents: list[str] = field(default_factory=list)
    rules: list[tuple[str, str]] = field(default_factory=list)  # (lower-case key, value)


def groups(text: str) -> tuple[list[Group], list[str]]:
    """Groups of rules (RFC 9309 §2.1: consecutive user-agent lines open one group), and the
    lines no robots.txt reader knows."""
    found: list[Group] = []
    unknown: list[str] = []
    last_was_agent = False
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key, sep, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if not sep or key not in KNOWN_RULES:
            unknown.append(raw.strip())
            continue
        if key == "user-agent":
            if not last_was_agent:
                found.append(Group())
            found[-1].agents.append(value.lower())
            last_was_agent = True
            continue
        last_was_agent = False
        if found and key != "sitemap":
            found[-1].rules.append((key, value))
    return found, unknown


def _usage_rules(group_list: list[Group], path: str) -> list[tuple[str, str]]:
    """The Content-Usage rules of the longest pattern matching `path` (ties all apply)."""
    best: list[tuple[str, str]] = []
    best_len = -1
    for group in group_list:
        for key, value in group.rules:
            if key != "content-usage":
                continue
            pattern, _, prefs = value.partition(" ")
            if not pattern.startswith("/") or not pattern_covers(pattern, path):
                continue
            if len(pattern) > best_len:
                best, best_len = [], len(pattern)
            if len(pattern) == best_len:
                best.append((pattern, prefs.strip()))
    return best


def read_robots(text: str, path: str) -> Reading:
    found, unknown = groups(text)
    parser = Protego.parse(text)
    terms: list[Term] = []
    everyone_refused = not parser.can_fetch(path, "*") and any("*" in g.agents for g in found)
    for agent, usages in AGENTS.items():
        if parser.can_fetch(path, agent):
            continue
        named = any(agent.lower() in g.agents for g in found)
        says = (f"User-agent: {agent} / Disallow at {path}" if named
                else f"User-agent: * / Disallow at {path} (covers {agent})")
        if not named and not everyone_refused:
            continue  # protego matched the agent to some other group by substring; not ours
        terms += [Term(u, Pref.NO, "robots-agents", says) for u in usages]
    relevant = [g for g in found
                if "*" in g.agents or any(a.lower() in g.agents for a in AGENTS)]
    rules = Reading.joined(
        [read_aipref(prefs, says_prefix=f"Content-Usage: {pattern} ")
         for pattern, prefs in _usage_rules(relevant, path)]
        + [read_content_signal(value) for group in relevant for key, value in group.rules
           if key == "content-signal"])
    return Reading(tuple(_dedupe(terms + list(rules.terms))), tuple(unknown) + rules.unknown,
                   path, rules.notes)


def read_ai_txt(text: str, path: str) -> Reading:
    """Spawning's ai.txt has robots.txt's syntax and speaks of AI training only: disallowing the
    path, or any text type under it, refuses training on the source's text."""
    found, unknown = groups(text)
    parser = Protego.parse(text)
    base = path.rstrip("/")
    probes = [path] + [f"{base}/document.{ext}" for ext in TEXT_EXTENSIONS]
    refused = [p for p in probes if not parser.can_fetch(p, "*")]
    terms: tuple[Term, ...] = ()
    if refused:
        terms = (Term("train", Pref.NO, "ai.txt", f"Disallow covers {refused[0]}"),)
    return Reading(terms, tuple(unknown), path)


def _dedupe(terms: list[Term]) -> list[Term]:
    seen: set[Term] = set()
    return [t for t in terms if not (t in seen or seen.add(t))]  # type: ignore[func-returns-value]
