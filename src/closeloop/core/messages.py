"""The words of refusals and reports in the reader's language: field labels, the sentence for each
kind of field problem, the importer's row reasons, and whole problem documents — shared by the web
pages, the API's problem documents and the command line (each adapter used to phrase them alone,
so a Chinese reader saw pydantic's English in one place and Chinese in another).

Every text is an English message id translated through :mod:`closeloop.core.i18n`'s catalogues.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from closeloop.core import phones
from closeloop.core.errors import DomainError, FieldProblem
from closeloop.core.i18n import N_, translations

# --- words ----------------------------------------------------------------------------------------

FIELD_LABELS: dict[str, str] = {
    "id": N_("ID"),
    "-id": N_("Newest first"),
    "name": N_("Name"),
    "industry": N_("Industry"),
    "size": N_("Company size"),
    "employees": N_("Employees"),
    "annual_revenue": N_("Annual revenue"),
    "tier": N_("Tier"),
    "region_id": N_("Region"),
    "country": N_("Country"),
    "province": N_("Province"),
    "city": N_("City"),
    "address": N_("Address"),
    "phone": N_("Phone"),
    "mobile": N_("Mobile"),
    "website": N_("Website"),
    "credit_line": N_("Credit line"),
    "latitude": N_("Latitude"),
    "tax_id": N_("Tax number"),
    "longitude": N_("Longitude"),
    "currency": N_("Currency"),
    "parent_account_id": N_("Parent account"),
    "year_established": N_("Year established"),
    "owner_id": N_("Owner"),
    "external_ref": N_("External reference"),
    "account_id": N_("Account"),
    "contact_id": N_("Contact"),
    "opportunity_id": N_("Opportunity"),
    "lead_id": N_("Lead"),
    "title": N_("Title"),
    "title_confirmed_on": N_("Title confirmed on"),
    "department": N_("Department"),
    "decision_role": N_("Decision role"),
    "email": N_("Email"),
    "wechat": N_("WeChat"),
    "company": N_("Company"),
    "source": N_("Source"),
    "status": N_("Status"),
    "product_line_id": N_("Product line"),
    "product_line_ids": N_("Product lines"),
    "product_id": N_("Product"),
    "notes": N_("Notes"),
    "received_at": N_("Received"),
    "disqualified_reason": N_("Why disqualified"),
    "stage": N_("Stage"),
    "amount": N_("Amount"),
    "margin": N_("Margin (%)"),
    "expected_close_date": N_("Expected close"),
    "lost_reason": N_("Lost reason"),
    "description": N_("Description"),
    "opened_at": N_("Opened"),
    "closed_at": N_("Closed"),
    "kind": N_("Type"),
    "direction": N_("Direction"),
    "subject": N_("Subject"),
    "occurred_at": N_("When"),
    "user_id": N_("By"),
    "is_replied": N_("Replied"),
    "duration_minutes": N_("Duration (minutes)"),
    "outcome": N_("Outcome"),
    "content_ref": N_("Content link"),
    "created_at": N_("Created"),
    "updated_at": N_("Last changed"),
    "signed_on": N_("Signed on"),
    "starts_on": N_("Starts on"),
    "ends_on": N_("Ends on"),
    "quote_id": N_("Quote"),
}

#: the words of the picklists' code values (GLOSSARY.md), wherever a code would otherwise be shown
CHOICE_LABELS: dict[str, str] = {
    # stages (GLOSSARY.md)
    "prospecting": N_("Prospecting"),
    "qualification": N_("Qualification"),
    "proposal": N_("Proposal"),
    "negotiation": N_("Negotiation"),
    "won": N_("Won"),
    "lost": N_("Lost"),
    # tiers
    "A": N_("Tier A"),
    "B": N_("Tier B"),
    "C": N_("Tier C"),
    # company sizes
    "micro": N_("Micro (< 10)"),
    "small": N_("Small (10–99)"),
    "medium": N_("Medium (100–999)"),
    "large": N_("Large (1,000–9,999)"),
    "enterprise": N_("Enterprise (10,000+)"),
    # decision roles
    "decision_maker": N_("Decision maker"),
    "influencer": N_("Influencer"),
    "user": N_("End user"),
    "gatekeeper": N_("Gatekeeper"),
    "champion": N_("Champion"),
    # lead sources
    "website": N_("Website"),
    "referral": N_("Referral"),
    "event": N_("Event"),
    "trade_show": N_("Trade show"),
    "cold_call": N_("Cold call"),
    "inbound_call": N_("Inbound call"),
    "advertising": N_("Advertising"),
    "partner": N_("Partner"),
    "social": N_("Social media"),
    "tender": N_("Tender"),
    "import": N_("Import"),
    "other": N_("Other"),
    # lead statuses
    "new": N_("New"),
    "working": N_("Working"),
    "qualified": N_("Qualified"),
    "converted": N_("Converted"),
    "disqualified": N_("Disqualified"),
    # activity kinds and directions
    "call": N_("Call"),
    "email": N_("E-mail"),
    "chat": N_("Chat message"),
    "visit": N_("Visit"),
    "meeting": N_("Meeting"),
    "inbound": N_("Inbound"),
    "outbound": N_("Outbound"),
    # contract statuses
    "draft": N_("Draft"),
    "active": N_("In force"),
    "completed": N_("Completed"),
    "terminated": N_("Terminated"),
}

#: statuses and priorities of orders and tickets (their codes overlap other picklists' codes)
ORDER_STATUSES: dict[str, str] = {
    "pending": N_("Pending"),
    "confirmed": N_("Confirmed"),
    "shipped": N_("Shipped"),
    "delivered": N_("Delivered"),
    "cancelled": N_("Cancelled"),
}
TICKET_STATUSES: dict[str, str] = {
    "open": N_("Open"),
    "in_progress": N_("In progress"),
    "resolved": N_("Resolved"),
    "closed": N_("Closed"),
}
PRIORITIES: dict[str, str] = {"low": N_("Low"), "normal": N_("Normal"), "high": N_("High"), "urgent": N_("Urgent")}


def _choices(*codes: str) -> dict[str, str]:
    return {code: CHOICE_LABELS[code] for code in codes}


#: the picklist fields (``record.field``, as rules name them) and the words of each of their codes
CHOICE_FIELDS: dict[str, dict[str, str]] = {
    "opportunity.stage": _choices("prospecting", "qualification", "proposal", "negotiation", "won", "lost"),
    "account.tier": _choices("A", "B", "C"),
    "account.size": _choices("micro", "small", "medium", "large", "enterprise"),
    "lead.status": _choices("new", "working", "qualified", "converted", "disqualified"),
    "lead.source": _choices(
        "website",
        "referral",
        "event",
        "trade_show",
        "cold_call",
        "inbound_call",
        "advertising",
        "partner",
        "social",
        "tender",
        "import",
        "other",
    ),
    "contact.decision_role": _choices("decision_maker", "influencer", "user", "gatekeeper", "champion"),
    "activity.kind": _choices("call", "email", "chat", "visit", "meeting"),
    "activity.direction": _choices("inbound", "outbound"),
    "contract.status": _choices("draft", "active", "completed", "terminated"),
    "order.status": ORDER_STATUSES,
    "ticket.status": TICKET_STATUSES,
    "ticket.priority": PRIORITIES,
}


def choice_text(field: str, value: Any, locale: str) -> str | None:
    """A code ``value`` of the picklist ``field`` (``opportunity.stage``) in the words of ``locale``
    (``negotiation`` → 商务谈判 / Negotiation; case ignored); ``None`` when ``field`` is no picklist
    or ``value`` none of its codes (a number, a date, a masked value stay as they are)."""
    words = CHOICE_FIELDS.get(field)
    if words is None or not isinstance(value, str):
        return None
    label = words.get(value) or next((text for code, text in words.items() if code.lower() == value.lower()), None)
    return translations(locale).gettext(label) if label else None


#: validators' own sentences (the API's words) → the sentence shown beside the input
SENTENCES: dict[str, str] = {
    phones.NOT_A_NUMBER: N_("This is not a phone number."),
    phones.NOT_VALID: N_("Not a valid mobile or landline number (a landline needs its area code, e.g. 0771-2399445)."),
}

#: pydantic's error types and the services' problem codes → the message shown beside the input
MESSAGES: dict[str, str] = {
    "invalid_tax_id": N_(
        "Not a valid tax number: a unified social credit code has 18 characters, a taxpayer number 15, 17 or 20."
    ),
    "exceeds_contract": N_("This would exceed the contract amount."),
    "exceeds_instalment": N_("This would exceed the instalment."),
    "missing": N_("This field is required."),
    "required": N_("This field is required."),
    "string_too_short": N_("This field is required."),
    "string_too_long": N_("This is too long."),
    "too_long": N_("This is too long."),
    "string_pattern_mismatch": N_("This is not in the expected format."),
    "pattern": N_("This is not in the expected format."),
    "int_parsing": N_("Enter a whole number."),
    "int_from_float": N_("Enter a whole number."),
    "decimal_parsing": N_("Enter a number."),
    "float_parsing": N_("Enter a number."),
    "decimal_max_places": N_("Too many decimal places."),
    "decimal_max_digits": N_("This number is too large."),
    "decimal_whole_digits": N_("This number is too large."),
    "out_of_range": N_("This number is out of range."),
    "greater_than_equal": N_("This number is too small."),
    "greater_than": N_("This number is too small."),
    "less_than_equal": N_("This number is too large."),
    "less_than": N_("This number is too large."),
    "date_parsing": N_("Enter a date."),
    "date_from_datetime_parsing": N_("Enter a date."),
    "datetime_parsing": N_("Enter a date and time."),
    "datetime_from_date_parsing": N_("Enter a date and time."),
    "enum": N_("Choose one of the options."),
    "not_a_choice": N_("Choose one of the options."),
    "not_found": N_("No such record that you can see."),
    "out_of_scope": N_("You can only assign records to yourself or your team."),
    "duplicate": N_("Another record already has this value."),
    "forbidden": N_("Your role may not set this field."),
    "computed": N_("This field is computed and cannot be set."),
    "bool_parsing": N_("Choose yes or no."),
    "partner_role_in_seller": N_(
        "A partner user belongs to a partner organization (a dealer, service provider, logistics company or "
        "supplier), not the seller's own: add them there."
    ),
    # an approval flow's condition that could never hold, or a flow that would never be used
    "not_a_field": N_("no such field"),
    "not_a_number": N_("the value must be a number"),
    "not_a_date": N_("the value must be a date (YYYY-MM-DD)"),
    "not_an_id": N_("the value must be a record id (a whole number)"),
    "not_ordered": N_("this field is compared with equals, not equal or one of, not greater or less than"),
    "not_text": N_("“contains” is for text fields"),
    "overlapping_flow": N_(
        "Another flow of this kind is switched on for the same departments: switch it off first, or save this "
        "one switched off."
    ),
}

#: the importer's own targets (references by name, product facts) that are not record-form fields
IMPORT_LABELS: dict[str, str] = {
    "owner": N_("Owner"),
    "parent_account": N_("Parent account"),
    "region": N_("Region"),
    "account": N_("Account"),
    "contact": N_("Contact"),
    "lead": N_("Lead"),
    "opportunity": N_("Opportunity"),
    "replied_at": N_("Replied at"),
    "user": N_("By"),
    "product_line": N_("Product line"),
    "product": N_("Product"),
    "code": N_("Code"),
    "is_active": N_("Active"),
    "lead_time_days": N_("Lead time (days)"),
    "list_price": N_("List price"),
    "unit": N_("Unit"),
    "priority": N_("Priority"),
}
TARGET_LABELS = {**FIELD_LABELS, **IMPORT_LABELS}

#: the importer's reasons that are whole sentences (no values inside), shown in the reader's language
REASONS = frozenset(
    {
        N_("is not a number"),
        N_("is not a number (write it like 1234.50 or 1,234.50)"),
        N_("is not a finite number"),
        N_("has more than two decimal places"),
        N_("is too large"),
        N_("is too large (at most 99,999,999,999,999.99)"),
        N_("is not a whole number"),
        N_("is not yes or no (是/否, yes/no, true/false, 1/0)"),
        N_("is not a date (use YYYY-MM-DD, 2024/3/5 or 2024年3月5日)"),
        N_("is a date with a time of day; this field takes a date only"),
        N_("has a time of day that is not HH:MM or HH:MM:SS"),
        N_("is required"),
        N_("is required when an opportunity is lost"),
    }
)

#: the body-size refusal (its limit is the problem document's ``limit``, filled in in every language)
TOO_LARGE = N_("The request body is larger than %(limit)s bytes")

#: what a refusal says when the service's own sentence has no translation, by its code, then status
#: (a ``%(name)s`` in one is filled in from the problem document's own member of that name)
FALLBACK_BY_CODE = {
    "payload_too_large": TOO_LARGE,
    "not_found": N_("This record does not exist, or you may not see it."),
    "validation_failed": N_("Some fields are not valid."),
    "forbidden": N_("Your role may not do this."),
    "stale_version": N_("Changed by someone else — reload and try again."),
}
FALLBACK_BY_STATUS = {
    400: N_("The request could not be completed."),
    401: N_("Sign in, or send a valid API token."),
    429: N_("Too many attempts; wait a moment and try again."),
    404: N_("This page does not exist, or you may not see it."),
    403: N_("Your role may not do this."),
    409: N_("This conflicts with the current state of the record."),
    415: N_("The body is not in a form this address reads."),
    422: N_("Some fields are not valid."),
}


def field_message(gettext: Callable[[str], str], problem: FieldProblem) -> str:
    """A problem as the sentence shown beside its input: the sentence for its code, else the
    service's own words (translated when the catalog has them, as ``services.po`` does for the
    fixed sentences of the record services)."""
    known = MESSAGES.get(problem.code) or SENTENCES.get(problem.message)
    return gettext(known) if known else gettext(problem.message)


def reason_text(problem: dict[str, Any], locale: str) -> str:
    """A row problem's reason in the reader's language: the importer's whole sentences from the
    catalog; a field rule by its code (the record forms' sentences); a field named by its key
    (``industry: …``, when its column is not in the file) by its label. An English sentence
    with values inside stays English only in the English interface."""
    gettext = translations(locale).gettext
    reason = str(problem.get("reason") or "")
    if reason in REASONS:
        return gettext(reason)
    prefix = ""
    key, colon, rest = reason.partition(": ")
    if colon and " " not in key and key:
        label = TARGET_LABELS.get(key) or TARGET_LABELS.get(key.removeprefix("custom."))
        prefix, reason = f"{gettext(label) if label else key.removeprefix('custom.')}: ", rest
    reason = reason.removeprefix("Value error, ")
    sentence = field_message(gettext, FieldProblem("", reason, str(problem.get("code") or "invalid")))
    if locale != "en" and sentence == reason and reason not in REASONS:
        sentence = gettext(N_("This value is not valid."))
    return prefix + sentence


def refusal_text(message: str, code: str, status: int, extra: Mapping[str, Any], locale: str) -> str:
    """A refusal's sentence in ``locale``: the service's own words from the catalogue, else its
    Chinese words when it carries them (``message_zh``), else the translated sentence for its kind
    of refusal (by code, then status) — a Chinese reader never gets an English sentence."""
    gettext = translations(locale).gettext
    text = gettext(message)
    if locale != "en" and text == message:
        fallback = FALLBACK_BY_CODE.get(code) or FALLBACK_BY_STATUS.get(status)
        localized = extra.get("message_zh") if locale == "zh_CN" else None
        text = str(localized) if localized else gettext(fallback or N_("The request could not be completed."))
        if not localized and fallback and "%(" in fallback:
            try:
                text = text % dict(extra)
            except (KeyError, TypeError, ValueError):  # a member it names is missing: the kind of refusal
                text = gettext(FALLBACK_BY_STATUS.get(status) or N_("The request could not be completed."))
    return text


def refusal_sentence(error: DomainError, locale: str) -> str:
    """:func:`refusal_text` of a domain error."""
    return refusal_text(error.message, error.code, error.status, error.extra, locale)


#: the sentence of a field problem whose own words have no translation, by its code
FIELD_FALLBACK: dict[str, str] = {
    "unknown": N_("Not a name this takes; the accepted ones are listed."),
    "duplicate": N_("Another record already has this value."),
}


def problem_message(problem: FieldProblem, locale: str) -> str:
    """A field problem's message in ``locale``: English as the service wrote it; otherwise the
    sentence for its code, its own words translated, or a translated sentence for its kind."""
    if locale == "en":
        return problem.message
    gettext = translations(locale).gettext
    sentence = field_message(gettext, problem)
    if sentence == problem.message:
        sentence = gettext(FIELD_FALLBACK.get(problem.code) or N_("This value is not valid."))
    return sentence


#: the problem documents' titles, by HTTP status
TITLES: dict[int, str] = {
    400: N_("Bad request"),
    401: N_("Authentication required"),
    403: N_("Forbidden"),
    404: N_("Not found"),
    405: N_("Method not allowed"),
    409: N_("Conflict"),
    412: N_("Precondition failed"),
    413: N_("Payload too large"),
    415: N_("Unsupported media type"),
    422: N_("Unprocessable content"),
    428: N_("Precondition required"),
    429: N_("Too many requests"),
    500: N_("Internal server error"),
}


def title(status: int, locale: str) -> str:
    return translations(locale).gettext(TITLES.get(status, N_("Error")))


#: where a problem document's ``type`` points (its code appended)
PROBLEM_TYPE = "https://closeloop.dev/problems/"
#: the media type of a problem document (RFC 9457)
PROBLEM_MEDIA_TYPE = "application/problem+json"


def problem_document(
    status: int,
    code: str,
    detail: str,
    *,
    problems: list[FieldProblem] | None = None,
    extra: Mapping[str, Any] | None = None,
    locale: str = "en",
) -> dict[str, Any]:
    """The body of a problem document, its words in ``locale``: what the API answers, and the
    workspace's few JSON addresses (a pick list's ``/options/…``) too. ``code``, ``type`` and each
    error's ``field`` and ``code`` are the same in every language; in another language than English
    the English words stay beside the translated ones (``detail_en``, each error's ``message_en``).
    ``extra`` members (an error's own, such as ``accepted_params``) are added as they are."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + code,
        "title": title(status, locale),
        "status": status,
        "code": code,
        "detail": refusal_text(detail, code, status, extra or {}, locale),
    }
    english = locale == "en"
    if not english:
        body["detail_en"] = detail
    if problems:
        body["errors"] = [
            p.as_dict() if english else {**p.as_dict(), "message": problem_message(p, locale), "message_en": p.message}
            for p in problems
        ]
    body.update(extra or {})
    return body
