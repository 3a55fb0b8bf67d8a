"""Signals read into train and ai-input preferences, vocabulary by vocabulary."""

import pytest

from provenance.engine import preferences
from provenance.engine.preferences import Pref, Reading, Term, combine, read

NO, YES, UNKNOWN = Pref.NO, Pref.YES, Pref.UNKNOWN


def decided(reading: Reading) -> tuple[Pref, Pref]:
    return reading.decide("train")[0], reading.decide("ai_input")[0]


@pytest.mark.parametrize("robots, path, expected", [
    # A training crawler refused: train is no, ai-input is not spoken of.
    ("User-agent: GPTBot\nDisallow: /\n", "/", (NO, UNKNOWN)),
    # An answer-time fetcher refused: the other way round.
    ("User-agent: ChatGPT-User\nDisallow: /\n", "/", (UNKNOWN, NO)),
    # Google-Extended covers Gemini's training and its grounding.
    ("User-agent: Google-Extended\nDisallow: /\n", "/", (NO, NO)),
    # Everyone refused at the path refuses every AI agent.
    ("User-agent: *\nDisallow: /\n", "/news", (NO, NO)),
    # Refused elsewhere on the site only: the source's path is still open.
    ("User-agent: GPTBot\nDisallow: /private/\n", "/news", (UNKNOWN, UNKNOWN)),
    ("User-agent: GPTBot\nDisallow: /news\n", "/news/2026", (NO, UNKNOWN)),
    # The longest rule wins (RFC 9309): an Allow for the path beats Disallow: /.
    ("User-agent: GPTBot\nDisallow: /\nAllow: /news\n", "/news", (UNKNOWN, UNKNOWN)),
    # Being allowed to crawl says nothing about use.
    ("User-agent: *\nAllow: /\n", "/", (UNKNOWN, UNKNOWN)),
    # A crawler that is not an AI agent is not a statement about AI use.
    ("User-agent: Googlebot\nDisallow: /\n", "/", (UNKNOWN, UNKNOWN)),
    # Group names match case-insensitively; consecutive user-agent lines share one group.
    ("user-agent: gptbot\nuser-agent: ccbot\ndisallow: /", "/", (NO, UNKNOWN)),
])
def test_robots_txt_ai_agents_decide_the_use_their_operator_states(robots, path, expected):
    assert decided(read("robots_txt", robots, path)) == expected


def test_an_agent_let_in_by_its_own_group_is_not_refused_but_the_others_are():
    reading = read("robots_txt", "User-agent: *\nDisallow: /\n\nUser-agent: GPTBot\nAllow: /\n")
    refused = " ".join(t.says for t in reading.terms)
    assert "GPTBot" not in refused and "covers ClaudeBot" in refused
    assert decided(reading) == (NO, NO)


def test_a_star_refusal_names_the_agents_it_covers():
    reading = read("robots_txt", "User-agent: *\nDisallow: /\n", "/")
    says = {t.says for t in reading.terms}
    assert "User-agent: * / Disallow at / (covers GPTBot)" in says
    assert reading.decide("train")[1].vocabulary == "robots-agents"


@pytest.mark.parametrize("robots, path, expected", [
    ("User-Agent: *\nAllow: /\nContent-Usage: / train-ai=n\n", "/a", (NO, UNKNOWN)),
    ("User-Agent: *\nAllow: /\nContent-Usage: / train-ai=n\nContent-Usage: /ai-ok/ train-ai=y\n",
     "/ai-ok/test", (YES, UNKNOWN)),
    ("User-Agent: *\nContent-Usage: / train-ai=n, ai-use=n\n", "/", (NO, NO)),
    # Identical paths with conflicting preferences: the most restrictive applies.
    ("User-Agent: *\nContent-Usage: /a train-ai=y\nContent-Usage: /a train-ai=n\n", "/a",
     (NO, UNKNOWN)),
    # Content-Signal lines (Cloudflare).
    ("User-Agent: *\nContent-Signal: search=yes, ai-train=no\nAllow: /\n", "/", (NO, UNKNOWN)),
    ("User-Agent: *\nContent-signal: search=yes, ai-train=yes, ai-input=no\n", "/", (YES, NO)),
])
def test_robots_txt_usage_rules_are_read(robots, path, expected):
    assert decided(read("robots_txt", robots, path)) == expected


def test_the_draft_example_robots_file_reads_as_its_table_says():
    robots = ("User-Agent: *\nAllow: /\nDisallow: /never/\nContent-Usage: / train-ai=n\n"
              "Content-Usage: /ai-ok/ train-ai=y\n\nUser-Agent: ExampleBot\nAllow: /\n"
              "Content-Usage: / train-ai=y\n")
    assert read("robots_txt", robots, "/test").decide("train")[0] is NO
    assert read("robots_txt", robots, "/ai-ok/test").decide("train")[0] is YES


@pytest.mark.parametrize("header, expected, unknown", [
    ("Content-Usage: train-ai=n", (NO, UNKNOWN), 0),
    ("Content-Usage: train-ai=y, ai-use=n", (YES, NO), 0),
    # search is read and noted; it bears on neither use.
    ("Content-Usage: search=n", (UNKNOWN, UNKNOWN), 0),
    # Only the Tokens y and n are preferences (§6.5): a string, a boolean, a label of an earlier
    # draft, an upper-case label (a failed parse) leave it unknown, and are reported.
    ('Content-Usage: train-ai="n"', (UNKNOWN, UNKNOWN), 1),
    ("Content-Usage: train-genai=n", (UNKNOWN, UNKNOWN), 1),
    ("Content-Usage: TRAIN-AI=n", (UNKNOWN, UNKNOWN), 1),
    # The last value of a repeated key applies (RFC 9651).
    ("Content-Usage: train-ai=n, train-ai=y", (YES, UNKNOWN), 0),
    ("Content-Signal: ai-train=no, ai-input=yes", (NO, YES), 0),
    ("Content-Signal: ai-train=maybe", (UNKNOWN, UNKNOWN), 1),
    ("tdm-reservation: 1\ntdm-policy: https://example.com/policy.json", (NO, NO), 0),
    ("tdm-reservation: 0", (YES, YES), 0),
    ("X-Robots-Tag: noai, noimageai", (NO, UNKNOWN), 0),
    ("X-Robots-Tag: noindex", (UNKNOWN, UNKNOWN), 0),
    ("X-Llm-Policy: nope", (UNKNOWN, UNKNOWN), 1),
    ("not a header", (UNKNOWN, UNKNOWN), 1),
])
def test_http_headers_are_read_by_their_vocabulary(header, expected, unknown):
    reading = read("http_header", header)
    assert decided(reading) == expected
    assert len(reading.unknown) == unknown


def test_tdmrep_json_uses_the_most_specific_location():
    rules = ('[{"location": "/", "tdm-reservation": 0},'
             ' {"location": "/premium/*", "tdm-reservation": 1,'
             ' "tdm-policy": "https://example.com/tdm.json"}]')
    assert decided(read("tdmrep", rules, "/premium/a")) == (NO, NO)
    assert decided(read("tdmrep", rules, "/free/a")) == (YES, YES)
    assert "tdm-policy https://example.com/tdm.json" in \
        read("tdmrep", rules, "/premium/a").decide("train")[1].says
    assert read("tdmrep", "[not json", "/").unknown


RSL = """<rsl xmlns="https://rslstandard.org/rsl">
  <content url="/">
    <license><prohibits type="usage">ai-train</prohibits></license>
  </content>
  <content url="/open/*">
    <license><permits type="usage">all</permits></license>
  </content>
  <content url="/answers/*">
    <license><permits type="usage">search ai-input</permits></license>
  </content>
  <content url="/paid/*">
    <license><permits type="usage">ai-index</permits></license>
    <license><permits type="usage">ai-all</permits>
      <payment type="training"><amount currency="USD">10</amount></payment></license>
  </content>
</rsl>"""


@pytest.mark.parametrize("path, expected", [
    ("/a", (NO, UNKNOWN)),
    ("/open/a", (YES, YES)),
    # Permits lists the uses a licence grants: ai-train is not among them, and a datastore
    # also indexes (ai-index), which is not granted either.
    ("/answers/a", (NO, NO)),
    # Two licences are alternatives: the paid one allows every AI use.
    ("/paid/a", (YES, YES)),
])
def test_rsl_licences_grant_what_they_list(path, expected):
    assert decided(read("rsl", RSL, path)) == expected


def test_rsl_conditions_and_unknown_tokens_are_kept():
    reading = read("rsl", RSL, "/paid/a")
    assert "conditions: payment training" in reading.decide("train")[1].says
    odd = read("rsl", '<rsl xmlns="https://rslstandard.org/rsl"><content url="/"><license>'
                      '<permits type="usage">ai-summarise</permits></license></content></rsl>', "/")
    assert any("ai-summarise" in u for u in odd.unknown)
    assert read("rsl", "<rsl><content", "/").unknown


def test_rsl_refuses_entity_expansion():
    bomb = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaa">'
            '<!ENTITY b "&a;&a;&a;&a;">]><rsl>&b;</rsl>')
    reading = read("rsl", bomb, "/")
    assert reading.unknown == ("RSL document refused: EntitiesForbidden",)
    assert reading.terms == ()


@pytest.mark.parametrize("ai_txt, expected", [
    ("User-Agent: *\nDisallow: /\n", NO),
    ("User-Agent: *\nDisallow: *.txt\nDisallow: *.pdf\n", NO),
    ("User-Agent: *\nDisallow: *.jpg\nDisallow: *.png\n", UNKNOWN),  # images only
    ("User-Agent: *\nAllow: /\n", UNKNOWN),
])
def test_ai_txt_refuses_training_on_text(ai_txt, expected):
    reading = read("ai_txt", ai_txt, "/")
    assert reading.decide("train")[0] is expected
    assert reading.decide("ai_input")[0] is UNKNOWN  # ai.txt speaks of training only


def test_statements_combine_most_restrictively():
    t = [Term("train", YES, "aipref", "train-ai=y"), Term("train", NO, "rsl", "prohibits"),
         Term("ai_input", YES, "content-signals", "ai-input=yes")]
    assert combine(t, "train") == (NO, t[1])
    assert combine(t, "ai_input") == (YES, t[2])
    assert combine([], "train") == (UNKNOWN, None)


def test_a_reading_survives_its_json_form():
    reading = read("robots_txt", "User-agent: *\nContent-Signal: ai-train=no, odd=1\n"
                                 "Disallow: /x\nWhatever: 3\n", "/")
    assert Reading.from_dict(reading.as_dict()) == reading
    assert "Whatever: 3" in reading.unknown and "Content-Signal: odd=1" in reading.unknown


def test_a_value_too_long_or_of_an_unknown_kind_is_refused():
    with pytest.raises(preferences.Unreadable, match="512,000 bytes"):
        read("robots_txt", "#" * 600_000)
    with pytest.raises(preferences.Unreadable, match="kind"):
        read("carrier_pigeon", "coo")


@pytest.mark.parametrize("pattern, path, covered", [
    ("/", "/a/b", True), ("/news", "/news/2026", True), ("/news", "/new", False),
    ("/*.pdf", "/a/b.pdf", True), ("/*.pdf$", "/a/b.pdf?x", False), ("/a$", "/a", True),
    ("/a$", "/ab", False), ("/a.b", "/axb", False)])
def test_path_patterns_follow_rfc_9309_for_every_vocabulary(pattern, path, covered):
    assert preferences.pattern_covers(pattern, path) is covered
