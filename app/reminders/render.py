"""Reminder texts. They are built from the rule and a link only, so they cannot carry health details.

No program name, no module title, no scores, no message content, not even the
recipient's name: an e-mail or SMS may be read by someone else first. E-mail and SMS go
out in the language the recipient chose under Account, or else their clinic's language
(no browser is there to ask). The in-app lines are stored in English and shown in the
reader's language (they are catalogue entries).
"""

from __future__ import annotations

from dataclasses import dataclass

from app.reminders.rules import Rule
from app.web.i18n import DEFAULT_LOCALE, N_, gettext, use_locale

PATIENT_LINE = N_("Something new is waiting for you in Tuki.")
PROGRAM_TIME_LINE = N_("It is the Tuki time you chose. Something is waiting for you in Tuki.")
STAFF_LINES: dict[str, str] = {
    Rule.DROPOUT_ALERT: N_("A patient in your care may need a check-in."),
    Rule.RESPONSE_DUE: N_("A message is waiting for your reply in Tuki."),
    Rule.FEEDBACK_OVERDUE: N_("Submitted work is waiting for your feedback in Tuki."),
}
STAFF_DEFAULT = N_("Something is waiting for you in Tuki.")
SUBJECT = N_("A note from Tuki")
GREETING = N_("Hello,")
OPEN_LINK = N_("Open Tuki: %(link)s")
PATIENT_FOOTER = N_(
    "You can choose how and when Tuki reminds you, or pause reminders, under Reminders in Tuki."
)
STAFF_FOOTER = N_("This is an automatic reminder from Tuki.")


@dataclass(frozen=True)
class Rendered:
    subject: str
    line: str  # the one-line message: in-app text and the start of the SMS
    text: str  # the e-mail body


def line_for(rule: str, audience: str) -> str:
    if audience == "staff":
        return STAFF_LINES.get(rule, STAFF_DEFAULT)
    return PROGRAM_TIME_LINE if rule == Rule.PROGRAM_TIME else PATIENT_LINE


def render(rule: str, audience: str, link: str, *, locale: str | None = None) -> Rendered:
    """The same neutral words on every channel; ``link`` is the tracked ``/r/…`` address."""
    footer_id = PATIENT_FOOTER if audience == "patient" else STAFF_FOOTER
    with use_locale(locale or DEFAULT_LOCALE):
        line = gettext(line_for(rule, audience))
        footer = gettext(footer_id)
        text = f"{gettext(GREETING)}\n\n{line}\n\n{gettext(OPEN_LINK, link=link)}\n\n{footer}\n"
        return Rendered(subject=gettext(SUBJECT), line=line, text=text)


def sms_text(rendered: Rendered, link: str) -> str:
    return f"{rendered.line} {link}"


def target_path(rule: str, audience: str, enrollment_id: int | None) -> str:
    """Where a reminder's link leads once opened (the page itself asks for login if needed)."""
    if audience == "staff":
        if rule == Rule.DROPOUT_ALERT and enrollment_id is not None:
            return f"/therapist/patients/{enrollment_id}"
        return "/therapist"
    if rule == Rule.NEW_MODULE:
        return "/patient/modules"
    if rule == Rule.QUESTIONNAIRE_DUE:
        return "/patient/questionnaires"
    return "/patient"
