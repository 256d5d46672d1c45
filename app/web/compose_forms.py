"""The compose form (Flask-WTF): recipients checked address by address, subject, body, files.

Each address field keeps the parsed addresses on the field (`field.addresses`) once it
validates, so the view never parses the same text twice. Nothing typed here can reach a
header: line breaks and control characters in an address or the subject are field errors.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    MultipleFileField,
    RadioField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, ValidationError

from app.messages import Address, AddressError, parse_address_list
from app.messages.addresses import FORBIDDEN_IN_HEADERS
from app.web.texts import say

MAX_ADDRESS_CHARS = 20_000
MAX_SUBJECT_CHARS = 900
MAX_ID_CHARS = 200

FORWARD_INLINE = "inline"
FORWARD_ATTACHMENT = "attachment"


class AddressListField(StringField):
    """Comma-separated addresses; `addresses` holds them parsed after validation."""

    addresses: list[Address]

    def pre_validate(self, form: FlaskForm) -> None:
        self.addresses = []
        try:
            self.addresses = parse_address_list(self.data or "")
        except AddressError as exc:
            raise ValidationError(say(exc.sentence)) from None


def _header_safe(form: FlaskForm, field: StringField) -> None:
    if any(char in FORBIDDEN_IN_HEADERS for char in field.data or ""):
        raise ValidationError(_l("The subject may not contain line breaks or control characters."))


# Shown through the field macro, which escapes it (it holds angle brackets).
ADDRESS_HELP = _l(
    "Name <address>, comma-separated. For example: Anna Petrova <anna@пример.рф>, "
    "bob@example.org"
)


class ComposeForm(FlaskForm):
    """A new message, a reply (`reply_to_id`) or a forward (`forward_id`)."""

    to = AddressListField(
        _l("To"), validators=[Length(max=MAX_ADDRESS_CHARS)], description=ADDRESS_HELP
    )
    cc = AddressListField(_l("Cc"), validators=[Length(max=MAX_ADDRESS_CHARS)])
    bcc = AddressListField(
        _l("Bcc"),
        validators=[Length(max=MAX_ADDRESS_CHARS)],
        description=_l("They get the message; nobody sees that they did."),
    )
    subject = StringField(
        _l("Subject"), validators=[Length(max=MAX_SUBJECT_CHARS), _header_safe]
    )
    body = TextAreaField(_l("Message"))
    attachments = MultipleFileField(
        _l("Attach files"), description=_l("You can choose several files at once.")
    )
    reply_to_id = HiddenField(validators=[Length(max=MAX_ID_CHARS)])
    forward_id = HiddenField(validators=[Length(max=MAX_ID_CHARS)])
    forward_mode = RadioField(
        _l("Include the original message"),
        choices=[
            SelectChoice(FORWARD_INLINE, _l("In the text, below what you write")),
            SelectChoice(FORWARD_ATTACHMENT, _l("As an attached message, exactly as received")),
        ],
        default=FORWARD_INLINE,
        validate_choice=False,  # anything but "attachment" means inline; unused otherwise
    )
    forward_attachments = BooleanField(
        _l("Also attach the original's files"), default=True
    )

    def validate(self, extra_validators: object = None) -> bool:
        valid = super().validate(extra_validators)  # type: ignore[arg-type]
        fields = (self.to, self.cc, self.bcc)
        if not any(f.errors for f in fields) and not any(
            getattr(f, "addresses", None) for f in fields
        ):
            self.to.errors = [
                *self.to.errors,
                _l("Add at least one recipient in To, Cc or Bcc."),
            ]
            return False
        return valid

    def recipients(self) -> tuple[list[Address], list[Address], list[Address]]:
        """To, Cc and Bcc, parsed (only after `validate()` passed)."""
        return self.to.addresses, self.cc.addresses, self.bcc.addresses
