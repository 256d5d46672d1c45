"""The login form (Flask-WTF: fields, validation, CSRF), prefilled from the POCHTA_* defaults."""

from __future__ import annotations

import ipaddress
import re

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError

from app.messages import AddressError, parse_address_list
from app.web.texts import say

_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")

SECURITY_CHOICES = [
    SelectChoice("tls", _l("TLS (implicit, from the first byte)")),
    SelectChoice("starttls", _l("STARTTLS (upgrade after connecting)")),
    SelectChoice("none", _l("None (unencrypted; only for a trusted network)")),
]


def normalize_host(value: str) -> str:
    """A host name (IDN allowed, stored in its ASCII form) or an IP address; else ValueError."""
    host = value.strip().rstrip(".").lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(host) from None
    labels = ascii_host.split(".")
    if not host or len(ascii_host) > 253 or not all(_HOST_LABEL.match(x) for x in labels):
        raise ValueError(host)
    return ascii_host


def _host(form: FlaskForm, field: StringField) -> None:
    try:
        field.data = normalize_host(field.data or "")
    except ValueError:
        raise ValidationError(_l("Enter a host name such as mail.example.org.")) from None


def _single_address(form: FlaskForm, field: StringField) -> None:
    try:
        addresses = parse_address_list(field.data or "")
    except AddressError as exc:
        raise ValidationError(say(exc.sentence)) from None
    if len(addresses) != 1:
        raise ValidationError(_l("Enter one e-mail address."))
    field.data = addresses[0].addr_spec


class LoginForm(FlaskForm):
    """The settings of the lab's desktop client, plus the password."""

    email = StringField(
        _l("E-mail address"), validators=[DataRequired(), Length(max=254), _single_address]
    )
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)])
    username = StringField(
        _l("User name"),
        validators=[Optional(), Length(max=254)],
        description=_l("Only if the server wants something other than the address."),
    )
    pop3_host = StringField(_l("POP3 server"), validators=[DataRequired(), _host])
    pop3_port = IntegerField(_l("Port"), validators=[DataRequired(), NumberRange(1, 65535)])
    pop3_security = SelectField(_l("Security"), choices=SECURITY_CHOICES)
    smtp_host = StringField(_l("SMTP server"), validators=[DataRequired(), _host])
    smtp_port = IntegerField(_l("Port"), validators=[DataRequired(), NumberRange(1, 65535)])
    smtp_security = SelectField(_l("Security"), choices=SECURITY_CHOICES)
    keep_on_server = BooleanField(
        _l("Keep mail on the server"),
        default=True,
        false_values=(False, "false", "", "0", "off", "no"),
        description=_l("Off: each message is deleted from the server once it is safely here."),
    )
