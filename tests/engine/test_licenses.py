import pytest

from provenance.engine.licenses import (
    LicenseError,
    Terms,
    UseClass,
    allowed,
    normalise_expression,
    resolve,
    terms_of,
)


@pytest.mark.parametrize(("raw", "normal"), [
    ("mit", "MIT"),
    ("mit or apache-2.0", "MIT OR Apache-2.0"),
    ("GPL-2.0+", "GPL-2.0-or-later"),
    ("cc-by-nc-sa-4.0 and cc-by-4.0", "CC-BY-NC-SA-4.0 AND CC-BY-4.0"),
    ("Apache-2.0 WITH LLVM-exception", "Apache-2.0 WITH LLVM-exception"),
    ("LicenseRef-Trailmark-Academic-Only", "LicenseRef-Trailmark-Academic-Only"),
])
def test_expressions_are_normalised_to_spdx_form(raw, normal):
    assert normalise_expression(raw) == normal


def test_an_unknown_key_is_an_error_that_names_it():
    with pytest.raises(LicenseError) as err:
        normalise_expression("MIT OR Made-Up-License-1.0")
    assert "Made-Up-License-1.0" in str(err.value)
    assert err.value.unknown_keys == ["Made-Up-License-1.0"]


@pytest.mark.parametrize("bad", ["", "   ", "MIT AND", "MIT AND (", "(MIT"])
def test_malformed_expressions_are_errors_not_crashes(bad):
    with pytest.raises(LicenseError):
        normalise_expression(bad)


@pytest.mark.parametrize(("expression", "use_class", "attribution", "share_alike"), [
    ("CC0-1.0", UseClass.COMMERCIAL, False, False),
    ("CC-BY-4.0", UseClass.COMMERCIAL, True, False),
    ("CC-BY-SA-4.0", UseClass.COMMERCIAL, True, True),
    ("CC-BY-NC-4.0", UseClass.NON_COMMERCIAL, True, False),
    ("CC-BY-ND-4.0", UseClass.NON_COMMERCIAL, True, False),
    ("C-UDA-1.0", UseClass.ACADEMIC_ONLY, False, False),
    ("NOASSERTION", UseClass.UNKNOWN, False, False),
    # AND must satisfy both: the stricter wins, flags accumulate.
    ("CC-BY-NC-4.0 AND CC-BY-SA-4.0", UseClass.NON_COMMERCIAL, True, True),
    # OR lets the user choose: the looser branch wins.
    ("CC-BY-NC-4.0 OR CC0-1.0", UseClass.COMMERCIAL, False, False),
])
def test_use_class_and_flags_follow_the_expression(expression, use_class, attribution, share_alike):
    assert terms_of(expression) == Terms(use_class, attribution, share_alike)


def test_the_most_restrictive_signal_binds_a_source():
    assert resolve(["CC-BY-4.0", "CC-BY-NC-4.0"]).use_class is UseClass.NON_COMMERCIAL
    assert resolve(["CC0-1.0", "LicenseRef-Trailmark-Academic-Only"]).use_class \
        is UseClass.ACADEMIC_ONLY
    assert resolve([]).use_class is UseClass.UNKNOWN


def test_policies_admit_only_their_use_classes():
    assert allowed(UseClass.COMMERCIAL, "commercial")
    assert not allowed(UseClass.NON_COMMERCIAL, "commercial")
    assert allowed(UseClass.NON_COMMERCIAL, "non-commercial")
    assert not allowed(UseClass.ACADEMIC_ONLY, "non-commercial")
    assert allowed(UseClass.ACADEMIC_ONLY, "academic")
    assert not allowed(UseClass.UNKNOWN, "academic")
    assert allowed(UseClass.UNKNOWN, "academic", allow_unknown=True)


# Licence strings from real packages' machine-readable copyright files (DEP-5), as written.
AS_WRITTEN = {
    "GPL-2+": "GPL-2.0-or-later", "GPL-3+": "GPL-3.0-or-later", "GPL-2": "GPL-2.0-only",
    "LGPL-2+": "LGPL-2.0-or-later", "LGPL-2.1+": "LGPL-2.1-or-later", "AGPL-3+":
    "AGPL-3.0-or-later", "GFDL-1.3+": "GFDL-1.3-or-later", "Expat": "MIT", "MIT/X11": "MIT",
    "public-domain": "LicenseRef-Trailmark-Public-Domain",
    "PD": "LicenseRef-Trailmark-Public-Domain", "BSD-3-clause": "BSD-3-Clause",
    "BSD-2-clause": "BSD-2-Clause", "Apache-2": "Apache-2.0", "Apache-2.0": "Apache-2.0",
    "CC-BY-SA-3": "CC-BY-SA-3.0", "CC0": "CC0-1.0", "Zlib": "Zlib", "ISC": "ISC",
    "Artistic, GPL-1+": "Artistic-1.0 AND GPL-1.0-or-later",
    "GPL-2+ or Artistic": "GPL-2.0-or-later OR Artistic-1.0",
    "Perl": "Artistic-1.0-Perl OR GPL-1.0-or-later",
    "LicenseRef-odd-terms": "LicenseRef-odd-terms",
    "MIT and LicenseRef-site-terms": "MIT AND LicenseRef-site-terms",
}


@pytest.mark.parametrize(("written", "spdx"), sorted(AS_WRITTEN.items()))
def test_licence_names_as_projects_write_them_are_read_as_spdx(written, spdx):
    from provenance.engine.licenses import resolve_license

    resolved = resolve_license(written)
    assert resolved.expression == spdx and resolved.original == written


def test_a_licence_ref_is_accepted_with_an_unknown_use_class_until_a_curator_decides():
    from provenance.engine.licenses import UseClass, resolve_license, terms_of

    assert terms_of(resolve_license("LicenseRef-odd-terms").expression).use_class is \
        UseClass.UNKNOWN
    assert terms_of(resolve_license("public-domain").expression).use_class is \
        UseClass.COMMERCIAL


@pytest.mark.parametrize(("written", "hint"), [
    ("Apche-2.0", "Apche-2.0 (did you mean Apache-2.0"),
    ("GPL-2.5", "GPL-2.5 (did you mean"),
    ("BSD", "BSD (did you mean 0BSD?)"),
])
def test_an_unknown_key_is_named_with_the_closest_known_ones(written, hint):
    from provenance.engine.licenses import LicenseError, resolve_license

    with pytest.raises(LicenseError) as raised:
        resolve_license(written)
    assert hint in str(raised.value) and "LicenseRef-<name>" in str(raised.value)
