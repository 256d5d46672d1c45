"""Pure MIME: reading stored mail for display and search, building mail for sending.

Knows the standard library's `email` package and nh3, nothing of Flask, sockets or the
store, so every function here takes bytes or values and returns values.
"""

from app.messages.addresses import Address, AddressError, parse_address_list
from app.messages.build import (
    Attachment,
    ComposeError,
    Draft,
    OutgoingMessage,
    build_message,
)
from app.messages.headers import Mailbox
from app.messages.index import IndexFields, index_fields
from app.messages.parse import (
    AttachmentInfo,
    ParsedMessage,
    PartData,
    get_part,
    parse_message,
)
from app.messages.replies import forward_draft, reply_draft
from app.messages.sanitize import SanitizedHTML, html_to_text, sanitize_html
from app.messages.trace import AuthResult, DkimSignature, Hop, TraceReport, analyse_trace

__all__ = [
    "Address",
    "AddressError",
    "Attachment",
    "AttachmentInfo",
    "AuthResult",
    "ComposeError",
    "DkimSignature",
    "Draft",
    "Hop",
    "IndexFields",
    "Mailbox",
    "OutgoingMessage",
    "ParsedMessage",
    "PartData",
    "SanitizedHTML",
    "TraceReport",
    "analyse_trace",
    "build_message",
    "forward_draft",
    "get_part",
    "html_to_text",
    "index_fields",
    "parse_address_list",
    "parse_message",
    "reply_draft",
    "sanitize_html",
]
