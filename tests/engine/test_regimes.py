from datetime import date, datetime

import pytest

from takedowns.engine import regimes
from takedowns.engine.regimes import Calendar, deadlines, missing, restore_window

US = Calendar.for_country("US", [2026, 2027])
LEVELS = {"acknowledge": 2, "decide": 10, "voluntary": 30}


def complete_dmca() -> dict:
    return {
        "claimant_name": "Ann Owner", "claimant_email": "ann@harbor.example",
        "authority": "owner", "postal_address": "1 Quay St, Harbor",
        "signature": "Ann Owner",
        "works": [{"title": "Tide Essays", "urls": ["https://harbor.example/tide"]}],
        "statements": {"good_faith": True, "accuracy": True, "authority_under_perjury": True},
    }


def test_a_complete_dmca_notice_misses_nothing_and_each_gap_is_named():
    assert missing("dmca_512", complete_dmca()) == []
    notice = complete_dmca()
    notice["statements"]["authority_under_perjury"] = False
    notice["works"][0]["urls"] = []
    gaps = {m["element"]: m["message"] for m in missing("dmca_512", notice)}
    assert set(gaps) == {"statements.authority_under_perjury", "location", "works"}
    assert "penalty of perjury" in gaps["statements.authority_under_perjury"]


def test_an_agent_needs_proof_and_a_gdpr_request_needs_a_ground():
    notice = {**complete_dmca(), "authority": "agent"}
    assert [m["element"] for m in missing("dmca_512", notice)] == ["authority"]
    assert missing("dmca_512", {**notice, "proof": "letter of authority, 2026-01-02"}) == []
    gdpr = {"claimant_name": "Bo", "claimant_email": "bo@x.example", "signature": "Bo",
            "authority": "data_subject", "personal_data": "my name and address", "ground": "z"}
    assert [m["element"] for m in missing("gdpr_17", gdpr)] == ["ground"]
    assert missing("gdpr_17", {**gdpr, "ground": "a"}) == []


def test_each_regime_asks_for_its_own_elements():
    dsa = {**complete_dmca(), "statements": {}}
    assert {m["element"] for m in missing("dsa_16", dsa)} == {"explanation",
                                                              "statements.bona_fide"}
    cdsm = complete_dmca()
    assert [m["element"] for m in missing("cdsm_4", cdsm)] == ["reservation"]
    assert missing("voluntary", {"claimant_name": "A", "claimant_email": "a@b.c",
                                 "works": [{"title": "T", "sample_text": "some words"}]}) == []
    with pytest.raises(ValueError, match="unknown legal basis"):
        missing("dmca", {})
    assert set(regimes.REQUIRED) == set(regimes.BASES)


def test_business_days_skip_weekends_and_public_holidays():
    assert US.add(date(2026, 11, 25), 2) == date(2026, 11, 30)  # Thanksgiving, a weekend
    assert US.add(date(2026, 11, 28), 2) == date(2026, 12, 1)   # received on a Saturday
    assert US.between(date(2026, 11, 25), date(2026, 11, 30)) == 2
    assert Calendar().add(date(2026, 11, 25), 2) == date(2026, 11, 27)  # no holidays


def test_deadlines_follow_the_service_levels_and_the_gdpr_month():
    d = deadlines("dmca_512", datetime(2026, 12, 1, 9), US, LEVELS)
    assert d == {"acknowledge": date(2026, 12, 3), "decide": date(2026, 12, 15)}
    assert deadlines("voluntary", datetime(2026, 12, 1, 9), US, LEVELS)["decide"] == \
        date(2027, 1, 14)  # 30 business days, less Christmas and New Year
    g = deadlines("gdpr_17", datetime(2026, 1, 31, 9), US, {**LEVELS, "gdpr_17": 40})
    assert g["decide"] == date(2026, 2, 28) and g["decide_extended"] == date(2026, 4, 30)


def test_the_dmca_restore_window_is_10_to_14_business_days():
    assert restore_window(datetime(2026, 12, 18, 12), US) == (date(2027, 1, 5),
                                                             date(2027, 1, 11))
