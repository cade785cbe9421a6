"""PHI masking on the pages payer portals show: nothing declared survives, the page does."""

import re
from datetime import date

import pytest

from rcm.phi import _DeclaredLiterals, mask, mask_json, masker, remembering_masker

ELIGIBILITY_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <title>Eligibility and Benefits Inquiry - Results</title>
  <meta name="viewport" content="width=device-width, initial-scale=1">
</head>
<body class="portal">
<header class="topbar">
  <span class="user">Logged in as
    <a href="mailto:jane.biller@acmebilling.com">jane.biller@acmebilling.com</a></span>
</header>
<main id="main" role="main">
  <h1 class="page-title">Eligibility and Benefits</h1>
  <section class="card patient-card" aria-label="Patient information">
    <h2>Patient</h2>
    <table class="table table-sm patient-details">
      <tbody>
        <tr><th scope="row">Patient Name</th><td class="value">MARIA L LOPEZ</td></tr>
        <tr><th scope="row">Date of Birth</th><td class="value">01/05/1980</td></tr>
        <tr><th scope="row">Member ID</th>
            <td class="value" data-copy="W123456789">W123456789</td></tr>
        <tr><th scope="row">Group Number</th><td class="value">004512</td></tr>
        <tr><th scope="row">Subscriber</th><td class="value">LOPEZ, CARLOS</td></tr>
        <tr><th scope="row">Relationship</th><td class="value">Spouse</td></tr>
        <tr><th scope="row">Phone</th><td class="value">(555) 123-4567</td></tr>
        <tr><th scope="row">Address</th>
            <td class="value">742 Evergreen Terrace<br>Springfield, IL 62704</td></tr>
      </tbody>
    </table>
  </section>
  <section class="card coverage-card" aria-label="Coverage">
    <h2>Coverage</h2>
    <dl class="coverage">
      <dt>Payer</dt><dd>Blue Cross Blue Shield of Illinois</dd>
      <dt>Plan</dt><dd>BlueAdvantage Gold PPO 1000</dd>
      <dt>Coverage Status</dt><dd><span class="badge badge-success">Active Coverage</span></dd>
      <dt>Plan Dates</dt><dd>01/01/2024 - 12/31/2024</dd>
    </dl>
    <table class="table benefits" id="benefits-table">
      <thead><tr><th>Service Type</th><th>Network</th><th>Copay</th><th>Coinsurance</th>
        <th>Deductible Remaining</th></tr></thead>
      <tbody>
        <tr><td>Office Visit - Primary Care</td><td>In Network</td>
          <td class="amount">$25.00</td><td>0%</td><td class="amount">$1,250.00</td></tr>
        <tr><td>Specialist</td><td>In Network</td>
          <td class="amount">$50.00</td><td>20%</td><td class="amount">$1,250.00</td></tr>
        <tr><td>Emergency Room</td><td>In Network</td>
          <td class="amount">$250.00</td><td>20%</td><td class="amount">$1,250.00</td></tr>
      </tbody>
    </table>
  </section>
  <p class="disclaimer">Annual deductible applies. Benefits as of 03/15/2024.</p>
  <button type="button" class="btn btn-primary" id="new-inquiry">New Inquiry</button>
</main>
</body>
</html>
"""
ELIGIBILITY_ROW = {
    "first_name": "Maria",
    "last_name": "Lopez",
    "member_id": "W123456789",
    "dob": "1980-01-05",
    "subscriber_first_name": "Carlos",
    "address": "742 Evergreen Terrace",
    "zip": "62704",
}

SEARCH_FORM = """<form id="patient-search" class="search-form" action="/eligibility/search"
      method="post">
  <input type="hidden" name="csrfmiddlewaretoken" value="Zx9ab3Kq7LmN2pQr">
  <div class="form-group">
    <label for="memberId">Member ID</label>
    <input type="text" class="form-control" id="memberId" name="memberId" value="W123456789"
           aria-label="Member ID" required>
  </div>
  <div class="form-group">
    <label for="firstName">First Name</label>
    <input type="text" class="form-control" id="firstName" name="firstName" value="Maria">
  </div>
  <div class="form-group">
    <label for="lastName">Last Name</label>
    <input type="text" id="lastName" name="lastName" value="O&#x27;Brien" class="form-control">
  </div>
  <div class="form-group">
    <label for="dob">Date of Birth</label>
    <input type="text" id="dob" name="dob" placeholder="MM/DD/YYYY" value="01/05/1980">
  </div>
  <div class="form-group">
    <label for="ssn">SSN</label>
    <input type="text" id="ssn" name="ssn" value="123-45-6789">
  </div>
  <div class="form-group">
    <label for="acct">Patient Account #</label>
    <input type="text" id="acct" name="acct" value="88213">
  </div>
  <select id="payer" name="payerId">
    <option value="00621" selected>BCBS Illinois</option>
    <option value="87726">UnitedHealthcare</option>
  </select>
  <label for="dos">Date of Service</label>
  <input type="date" id="dos" name="dos" value="2024-03-15">
  <button type="submit" class="btn btn-primary">Search</button>
</form>
"""
SEARCH_ROW = {
    "member_id": "W123456789",
    "first_name": "Maria",
    "last_name": "O'Brien",
    "dob": date(1980, 1, 5),
}

CLAIM_STATUS_PAGE = """<div class="claim-status" id="claim-status-result">
  <h2>Claim Status</h2>
  <div class="patient-header">
    <span class="patient-name">Lopez, Maria</span>
    <span class="mrn">MRN: 00123456</span>
    <span class="acct">Patient Account #: PA-778812</span>
  </div>
  <table class="claims">
    <thead><tr><th>Claim #</th><th>Service Dates</th><th>Billed</th><th>Paid</th>
      <th>Status</th><th>CARC</th></tr></thead>
    <tbody>
      <tr data-claim="2024031500123">
        <td><a href="/claims/2024031500123">2024031500123</a></td>
        <td>03/15/2024 - 03/15/2024</td><td>$180.00</td><td>$112.40</td>
        <td><span class="status status-paid">Finalized/Paid</span></td><td>CO-45</td></tr>
      <tr data-claim="2024040200456">
        <td><a href="/claims/2024040200456">2024040200456</a></td>
        <td>Apr 2, 2024</td><td>$95.00</td><td>$0.00</td>
        <td><span class="status status-denied">Denied</span></td><td>CO-197</td></tr>
    </tbody>
  </table>
  <!-- rendered for member W123456789, DOB 1980-01-05 -->
  <dl class="remarks"><dt>MRN</dt><dd>00123456</dd><dt>Remark</dt><dd>N130</dd></dl>
  <div class="remark">Questions: claims@bcbsil.example.com or (800) 555-0100 ext. 42</div>
</div>
"""
CLAIM_ROW = {
    "first_name": "Maria",
    "last_name": "Lopez",
    "mrn": "00123456",
    "patient_account": "PA-778812",
}


def _tags(html: str) -> list[str]:
    """The tag names and attribute names of a page, in order: its structure."""
    return re.findall(r"</?[A-Za-z][\w:-]*|\s[\w:-]+(?==)", html)


def _assert_gone(masked: str, row: dict) -> None:
    for value in row.values():
        assert str(value).lower() not in masked.lower(), value


def _assert_kept(masked: str, page: str, fragments: tuple[str, ...]) -> None:
    """The masked page keeps the page's structure and each of ``fragments`` as it was."""
    assert _tags(masked) == _tags(page)
    for kept in fragments:
        assert kept in masked, kept


# --- the pages ----------------------------------------------------------------------------


def test_an_eligibility_page_loses_every_declared_value():
    masked = mask(ELIGIBILITY_PAGE, declared=ELIGIBILITY_ROW)
    _assert_gone(masked, ELIGIBILITY_ROW)
    assert "01/05/1980" not in masked
    assert "(555) 123-4567" not in masked
    assert "jane.biller" not in masked


def test_an_eligibility_page_gets_typed_placeholders():
    masked = mask(ELIGIBILITY_PAGE, declared=ELIGIBILITY_ROW)
    assert '<td class="value">[FIRST_NAME] L [LAST_NAME]</td>' in masked
    assert '<th scope="row">Date of Birth</th><td class="value">[DOB]</td>' in masked
    assert '<td class="value" data-copy="[MEMBER_ID]">[MEMBER_ID]</td>' in masked
    assert '<td class="value">[LAST_NAME], [SUBSCRIBER_FIRST_NAME]</td>' in masked
    assert '<td class="value">[PHONE]</td>' in masked
    assert "[ADDRESS]<br>Springfield, IL [ZIP]" in masked
    assert '<a href="mailto:[EMAIL]">[EMAIL]</a>' in masked
    assert "<dd>[DATE] - [DATE]</dd>" in masked


def test_an_eligibility_page_keeps_its_structure_amounts_and_plan():
    masked = mask(ELIGIBILITY_PAGE, declared=ELIGIBILITY_ROW)
    fragments = (
        '<section class="card patient-card" aria-label="Patient information">',
        '<th scope="row">Member ID</th>',
        '<th scope="row">Group Number</th><td class="value">004512</td>',
        "<dd>BlueAdvantage Gold PPO 1000</dd>",
        "<dd>Blue Cross Blue Shield of Illinois</dd>",
        '<td class="amount">$25.00</td><td>0%</td><td class="amount">$1,250.00</td>',
        '<span class="badge badge-success">Active Coverage</span>',
        "Annual deductible applies.",
        '<button type="button" class="btn btn-primary" id="new-inquiry">New Inquiry</button>',
    )
    _assert_kept(masked, ELIGIBILITY_PAGE, fragments)


def test_a_search_form_masks_its_filled_values_and_keeps_the_form():
    masked = mask(SEARCH_FORM, declared=SEARCH_ROW)
    _assert_gone(masked, SEARCH_ROW)
    assert "O&#x27;Brien" not in masked
    assert 'name="memberId" value="[MEMBER_ID]"' in masked
    assert 'name="firstName" value="[FIRST_NAME]"' in masked
    assert 'name="lastName" value="[LAST_NAME]"' in masked
    assert 'placeholder="MM/DD/YYYY" value="[DOB]"' in masked
    assert 'name="ssn" value="[SSN]"' in masked
    assert 'name="acct" value="[MRN]"' in masked
    assert 'name="dos" value="[DATE]"' in masked
    fragments = (
        '<label for="memberId">Member ID</label>',
        'aria-label="Member ID" required>',
        'value="Zx9ab3Kq7LmN2pQr"',
        '<option value="00621" selected>BCBS Illinois</option>',
        '<button type="submit" class="btn btn-primary">Search</button>',
    )
    _assert_kept(masked, SEARCH_FORM, fragments)


def test_a_claim_status_page_masks_mrn_account_and_service_dates():
    masked = mask(CLAIM_STATUS_PAGE, declared=CLAIM_ROW)
    _assert_gone(masked, CLAIM_ROW)
    assert '<span class="patient-name">[LAST_NAME], [FIRST_NAME]</span>' in masked
    assert '<span class="mrn">MRN: [MRN]</span>' in masked
    assert "Patient Account #: [PATIENT_ACCOUNT]" in masked
    assert "<td>[DATE] - [DATE]</td>" in masked
    assert "<td>[DATE]</td>" in masked
    assert "<!-- rendered for member [MEMBER_ID], DOB [DOB] -->" in masked
    assert "Questions: [EMAIL] or [PHONE]</div>" in masked


def test_a_claim_status_page_keeps_claim_numbers_amounts_and_codes():
    masked = mask(CLAIM_STATUS_PAGE, declared=CLAIM_ROW)
    fragments = (
        '<a href="/claims/2024031500123">2024031500123</a>',
        "<th>Claim #</th><th>Service Dates</th>",
        "<td>$180.00</td><td>$112.40</td>",
        '<span class="status status-denied">Denied</span></td><td>CO-197</td>',
        "<dt>Remark</dt><dd>N130</dd>",
    )
    _assert_kept(masked, CLAIM_STATUS_PAGE, fragments)


def test_undeclared_values_are_masked_by_shape_and_label():
    masked = mask(CLAIM_STATUS_PAGE)
    assert "00123456" not in masked and "PA-778812" not in masked
    assert "<dt>MRN</dt><dd>[MRN]</dd>" in masked
    assert "Patient Account #: [MRN]" in masked
    assert "<!-- rendered for member [MEMBER_ID], DOB [DOB] -->" in masked
    assert '<span class="patient-name">Lopez, Maria</span>' in masked  # names need declaring


@pytest.mark.parametrize("page", [ELIGIBILITY_PAGE, SEARCH_FORM, CLAIM_STATUS_PAGE])
def test_masking_twice_changes_nothing(page):
    declared = {**ELIGIBILITY_ROW, **SEARCH_ROW, **CLAIM_ROW, "nickname": "Phi"}
    once = mask(page, declared=declared)
    assert mask(once, declared=declared) == once
    assert mask(once) == once


# --- shapes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("SSN on file 123-45-6789.", "SSN on file [SSN]."),
        ("ssn 123 45 6789", "ssn [SSN]"),
        ("Call (555) 123-4567 today", "Call [PHONE] today"),
        ("555-123-4567 / 555.123.4567", "[PHONE] / [PHONE]"),
        ("+1 555 123 4567, 1-800-555-0199 x204", "[PHONE], [PHONE]"),
        ("tel:+15551234567", "tel:[PHONE]"),
        ("Mail maria.lopez+eob@example.co.uk now", "Mail [EMAIL] now"),
        ("Seen 01/05/1980, 1/5/80 and 1980-01-05", "Seen [DATE], [DATE] and [DATE]"),
        ("Born Jan 5, 1980 (05-Jan-1980)", "Born [DOB] ([DATE])"),
        ("From January 5th, 2024 to 12-31-2024", "From [DATE] to [DATE]"),
        ('{"updated": "2024-03-15T10:42:00Z"}', '{"updated": "[DATE]T10:42:00Z"}'),
        ("Members W123456789 and XYZ123456789.", "Members [MEMBER_ID] and [MEMBER_ID]."),
    ],
)
def test_shapes_are_masked_in_plain_text(text, masked):
    assert mask(text) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Member ID: 887766554", "Member ID: [MEMBER_ID]"),
        ("Subscriber # 00442211", "Subscriber # [MEMBER_ID]"),
        ("Member No. H8812-01", "Member No. [MEMBER_ID]"),
        ("ID Number: 55120934", "ID Number: [MEMBER_ID]"),
        ("Medicaid ID 99887766A", "Medicaid ID [MEMBER_ID]"),
        ("MRN 00123456", "MRN [MRN]"),
        ("Medical Record Number: 7781-22", "Medical Record Number: [MRN]"),
        ("Acct #12345678", "Acct #[MRN]"),
        ("SSN: 123456789", "SSN: [SSN]"),
        ("DOB: 19800105", "DOB: [DOB]"),
        ("Date of Birth&nbsp;01/05/1980", "Date of Birth&nbsp;[DOB]"),
        ('{"memberId": "887766554"}', '{"memberId": "[MEMBER_ID]"}'),
        ("/eligibility?subscriberId=887766554", "/eligibility?subscriberId=[MEMBER_ID]"),
    ],
)
def test_labelled_values_are_masked_with_the_labels_type(text, masked):
    assert mask(text) == masked


@pytest.mark.parametrize(
    ("html", "masked"),
    [
        (
            "<tr><th>Member ID</th><td>887766554</td></tr>",
            "<tr><th>Member ID</th><td>[MEMBER_ID]</td></tr>",
        ),
        (
            '<div class="row"><div class="label">Subscriber ID:</div>\n'
            '  <div class="value"><span>887766554</span></div></div>',
            '<div class="row"><div class="label">Subscriber ID:</div>\n'
            '  <div class="value"><span>[MEMBER_ID]</span></div></div>',
        ),
        ("<dl><dt>MRN</dt>\n<dd>00123456</dd></dl>", "<dl><dt>MRN</dt>\n<dd>[MRN]</dd></dl>"),
        (
            '<label for="x">Member ID</label><input id="x" value="887766554">',
            '<label for="x">Member ID</label><input id="x" value="[MEMBER_ID]">',
        ),
        (
            '<input name="ctl00$Main$txtMRN" value="00123456">',
            '<input name="ctl00$Main$txtMRN" value="[MRN]">',
        ),
        (
            '<input aria-label="Patient date of birth" value="Jan 5, 1980">',
            '<input aria-label="Patient date of birth" value="[DOB]">',
        ),
    ],
)
def test_a_label_types_the_value_in_the_next_cell_or_input(html, masked):
    assert mask(html) == masked


def test_a_label_reaches_only_the_next_value():
    html = (
        "<tr><th>Member ID</th><td>Pending</td><td>40012345</td></tr>"
        '<tr><td>MRN</td><td><input type="hidden" value="Yes"></td><td>40012345</td></tr>'
    )
    assert mask(html) == html


# --- declared literals --------------------------------------------------------------------


def test_declared_mapping_keys_name_the_placeholders_and_a_plain_list_gives_phi():
    text = "Maria Lopez, 742 Evergreen Terrace"
    declared = {"first_name": "Maria", "Street Address": "742 Evergreen Terrace"}
    assert mask(text, declared=declared) == "[FIRST_NAME] Lopez, [STREET_ADDRESS]"
    assert mask(text, declared=["Maria", "Lopez"]) == "[PHI] [PHI], 742 Evergreen Terrace"
    assert mask(text, declared="Lopez") == "Maria [PHI], 742 Evergreen Terrace"


def test_declared_literals_match_whole_tokens_only():
    text = "Annual visit for Ann; Leeds office; Lee-Ann Smithson; Smith"
    masked = mask(text, declared={"first_name": "Ann", "last_name": "Lee", "other": "Smith"})
    assert masked == (
        "Annual visit for [FIRST_NAME]; Leeds office; [LAST_NAME]-[FIRST_NAME] Smithson; [OTHER]"
    )


def test_declared_literals_match_in_any_case_spacing_and_html_escaping():
    html = (
        "<p>MARIA  O&#x27;BRIEN</p><p>o&#39;brien</p><p>O'Brien</p>"
        '<p>Maria\n    Lopez</p><p>Smith &amp; Sons</p><p title="Smith &amp; Sons">x</p>'
    )
    declared = {
        "full_name": "Maria Lopez",
        "first_name": "Maria",
        "last_name": "O'Brien",
        "employer": "Smith & Sons",
    }
    assert mask(html, declared=declared) == (
        "<p>[FIRST_NAME]  [LAST_NAME]</p><p>[LAST_NAME]</p><p>[LAST_NAME]</p>"
        '<p>[FULL_NAME]</p><p>[EMPLOYER]</p><p title="[EMPLOYER]">x</p>'
    )


def test_a_declared_date_matches_its_other_formats():
    text = "DOB 01/05/1980; 1/5/1980; Jan 5, 1980; January 5, 1980; 05-Jan-1980; 1980-01-05"
    for dob in (date(1980, 1, 5), "1980-01-05", "01/05/1980", "1/5/1980"):
        masked = mask(text, declared={"patient_dob": dob})
        assert masked == "DOB [PATIENT_DOB]; " + "; ".join(["[PATIENT_DOB]"] * 5)


def test_declared_numbers_are_matched_as_text_and_blanks_are_ignored():
    declared = {"mrn": 4471882, "copay": None, "flag": True, "initial": "L", "blank": "  "}
    masked = mask("MRN-less note: chart 4471882, initial L, flag True", declared=declared)
    assert masked == "MRN-less note: chart [MRN], initial L, flag True"


def test_declared_digits_shown_with_separators_are_masked_by_their_shape():
    declared = {"ssn": "123456789", "phone": "5551234567"}
    masked = mask("SSN 123-45-6789, phone (555) 123-4567", declared=declared)
    assert masked == "SSN [SSN], phone [PHONE]"


def test_declared_literals_spare_tag_and_attribute_names():
    html = '<ul><li title="Li Wei">Li Wei</li></ul><div data-title="x">Title</div>'
    masked = mask(html, declared={"last_name": "Li", "given": "Wei", "job": "Title"})
    assert masked == (
        '<ul><li title="[LAST_NAME] [GIVEN]">[LAST_NAME] [GIVEN]</li></ul>'
        '<div data-title="x">[JOB]</div>'
    )


def test_naming_attributes_keep_shapes_but_lose_declared_values():
    html = '<tr id="H12345678" class="row-2024-01-05"><td id="member-W123456789">x</td></tr>'
    assert mask(html) == html
    assert mask(html, declared={"member_id": "W123456789"}) == html.replace(
        "W123456789", "[MEMBER_ID]"
    )


# --- no over-masking ----------------------------------------------------------------------


def test_ordinary_words_codes_and_amounts_survive():
    text = (
        "Annual wellness visit. Member Services: see your ID card. Member IDs are required. "
        "Copay $25.00, coinsurance 20%, deductible $1,250.00 of $3,000.00. "
        "NPI 1234567890, Tax ID 12-3456789, Provider ID Number 1588667788, Group # 004512. "
        "CPT 99213, ICD-10 E11.9, CARC CO-45, RARC N130. Page 1 of 3, version 2.10.4. "
        "Newborn care, remember 5 items."
    )
    assert mask(text) == text


def test_text_that_only_looks_like_a_tag_is_still_masked():
    text = "Lookup failed for <Patient: Maria Lopez W123456789 01/05/1980>"
    assert mask(text, declared=["Maria", "Lopez"]) == (
        "Lookup failed for <Patient: [PHI] [PHI] [MEMBER_ID] [DATE]>"
    )


def test_quoted_angle_brackets_do_not_break_a_tag():
    html = '<td title="Paid > billed; DOB 01/05/1980">W123456789</td>'
    assert mask(html) == '<td title="Paid > billed; DOB [DOB]">[MEMBER_ID]</td>'


# --- JSON ---------------------------------------------------------------------------------


def test_mask_json_masks_every_string_and_keeps_keys_and_other_values():
    action = {
        "action": "fill",
        "selector": "#memberId",
        "value": "W123456789",
        "W123456789": "key stays",
        "attempts": 2,
        "ok": False,
        "steps": [
            {"field": "dob", "value": "01/05/1980"},
            ("Maria Lopez", None),
            {"error": "No member found for Lopez, Maria (SSN 123-45-6789)"},
        ],
    }
    assert mask_json(action, declared={"first_name": "Maria", "last_name": "Lopez"}) == {
        "action": "fill",
        "selector": "#memberId",
        "value": "[MEMBER_ID]",
        "W123456789": "key stays",
        "attempts": 2,
        "ok": False,
        "steps": [
            {"field": "dob", "value": "[DATE]"},
            ["[FIRST_NAME] [LAST_NAME]", None],
            {"error": "No member found for [LAST_NAME], [FIRST_NAME] (SSN [SSN])"},
        ],
    }


# --- size ---------------------------------------------------------------------------------


def test_a_two_megabyte_page_is_masked_whole():
    """A snapshot of a long claims list; the patterns must not backtrack on its size."""
    row = (
        '<tr class="claim-row" data-row="{index}"><td class="cell">{index:013d}</td>'
        "<td>Lopez, Maria</td><td>W{index:09d}</td><td>03/{day:02d}/2024</td>"
        '<td class="amount">$125.00</td><td><span class="badge">Paid</span></td></tr>\n'
    )
    rows = "".join(row.format(index=index, day=index % 28 + 1) for index in range(11_000))
    page = f'<table class="claims"><tbody>{rows}</tbody></table><p>{"x" * 200_000}</p>'
    assert len(page) > 2_000_000
    masked = mask(page, declared=CLAIM_ROW)
    assert "Maria" not in masked and "Lopez" not in masked
    assert re.search(r"W\d{9}|\d\d/\d\d/2024", masked) is None
    assert masked.count("$125.00") == 11_000
    assert _tags(masked) == _tags(page)


def test_a_masker_prepared_once_masks_like_mask_json():
    declared = {"member_id": "W123456789", "last_name": "Okonkwo", "dob": "1980-04-30"}
    page = {"html": "<td>Okonkwo</td><td>W123456789</td><td>04/30/1980</td>", "n": [3]}
    prepared = masker(declared)
    assert prepared(page) == mask_json(page, declared=declared)
    assert prepared("Okonkwo") == "[LAST_NAME]"


DECLARED_ROW = {"member_id": "W123456789", "last_name": "O'Brien", "first_name": "Maria"}


@pytest.mark.parametrize(
    "text",
    [
        "Member not found",
        "Payer portal timeout after 30 s",
        "Obrien and Marian are other people",
        "<p>MARIA&nbsp;&nbsp;o&#x27;brien</p>",
        "maria said: o&#39;BRIEN, w123456789",
        "Straße, Muñoz and María",
        # Entities in any case: the pattern reads them, html.unescape does not.
        "seen: MARIA&NBSP;o'brien",
        "o&#X27;Brien, Maria&Nbsp;&nbsp;here",
    ],
)
def test_a_text_masked_without_compiling_is_masked_as_the_compiled_pattern_would(text):
    literals = _DeclaredLiterals(DECLARED_ROW)

    assert literals.mask(text) == literals._without_emails.sub(literals._placeholder, text)


@pytest.mark.parametrize(
    ("declared", "text", "masked"),
    [
        ({"name": "John Smith"}, "Patient John&NBSP;Smith seen", "Patient [PHI] seen"),
        ({"last": "O&Brien"}, "O&Amp;Brien here", "[PHI] here"),
    ],
)
def test_entities_in_any_case_are_masked(declared, text, masked):
    assert mask(text, declared=declared) == masked


def test_the_literals_are_compiled_only_for_a_text_that_may_hold_them():
    literals = _DeclaredLiterals(DECLARED_ROW)

    assert literals.mask("Payer portal timeout after 30 s") == "Payer portal timeout after 30 s"
    assert "_without_emails" not in vars(literals)  # the pattern was never compiled
    assert literals.mask("Maria O'Brien") == "[FIRST_NAME] [LAST_NAME]"
    assert "_without_emails" in vars(literals)


def test_a_remembering_masker_masks_like_mask_json_before_and_once_its_memory_is_full():
    steps = [
        {"action": "fill Member ID W123456789", "t_ms": 410, "ok": True, "note": None},
        {"action": "fill DOB 04/30/1980", "at": ("search", 2.5)},
    ]
    remembering = remembering_masker(limit=2)
    assert remembering(steps) == mask_json(steps)
    assert remembering(steps) == mask_json(steps)  # the remembered answers are the same
    assert remembering("SSN 123-45-6789") == mask_json("SSN 123-45-6789")  # past the limit
