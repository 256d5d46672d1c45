"""Error pages: every refusal is a page that says what happened and what to do next."""

from __future__ import annotations

from flask import Flask, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app.web.templating import filesize


def _wants_json() -> bool:
    accepted = request.accept_mimetypes
    return accepted["application/json"] > accepted["text/html"]


def _page(status: int, title: str, text: str) -> tuple[object, int]:
    if _wants_json():
        return {"error": text}, status
    return render_template("error.html", status=status, title=title, text=text), status


def _explain(error: HTTPException) -> tuple[str, str]:
    code = error.code or 500
    if isinstance(error, CSRFError):
        return _("The form has expired"), _(
            "This form was not sent from this page, or it is too old. Go back, reload the "
            "page and try again: nothing was changed."
        )
    if code == 404:
        return _("Not found"), _("There is nothing here, or it is not yours to see.")
    if code == 405:
        return _("Not allowed"), _("This address does not accept that kind of request.")
    if code == 413:
        return _("Too large"), _(
            "What you sent is larger than this server accepts (%(limit)s at most). Nothing "
            "was sent: go back, remove an attachment or choose smaller files, and try again.",
            limit=filesize(request.max_content_length),
        )
    if code == 429:
        return _("Too many attempts"), _(
            "There were too many failed logins. Wait a few minutes before trying again."
        )
    if code >= 500:
        return _("Something went wrong"), _(
            "Pochta could not finish this request. Nothing you stored was lost; try again."
        )
    # Not werkzeug's description: that is English whatever the user's language.
    return _("Request refused"), _("The request could not be handled.")


def init_error_pages(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> tuple[object, int]:
        title, text = _explain(error)
        return _page(error.code or 500, title, text)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> tuple[object, int]:
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        title, text = _explain(HTTPException())
        return _page(500, title, text)
