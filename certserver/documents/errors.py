"""Errors of the document area. Each carries a stable code and messages a kiosk can show."""

from __future__ import annotations

from certserver.refusals import CodedRefusal


class DocumentError(CodedRefusal):
    """Base of every document error: `code` is stable (API error code), messages are for people."""

    code = "document_error"


class DocumentRefusedError(DocumentError):
    """The content cannot be printed faithfully (e.g. 外字: a character the font lacks).

    Raised before anything is rendered or charged.
    """


class SignerNotFoundError(DocumentError):
    """The municipality has no document-signing material (run `certserver init`)."""


class FontNotFoundError(DocumentError):
    """The IPAex fonts are not installed."""
