"""Errors of the document area. Each carries a stable code and messages a kiosk can show."""

from __future__ import annotations


class DocumentError(Exception):
    """Base of every document error: `code` is stable (API error code), messages are for people."""

    code = "document_error"

    def __init__(self, code: str, message_ja: str, message_en: str) -> None:
        super().__init__(f"{code}: {message_en}")
        self.code = code
        self.message_ja = message_ja
        self.message_en = message_en

    def __reduce__(self) -> tuple[type[DocumentError], tuple[str, str, str]]:
        # Pickle rebuilds an exception from `args` (the one formatted message) by default;
        # a refusal raised in a render process must arrive as itself, code and messages.
        return (type(self), (self.code, self.message_ja, self.message_en))


class DocumentRefusedError(DocumentError):
    """The content cannot be printed faithfully (e.g. 外字: a character the font lacks).

    Raised before anything is rendered or charged.
    """


class SignerNotFoundError(DocumentError):
    """The municipality has no document-signing material (run `certserver init`)."""


class FontNotFoundError(DocumentError):
    """The IPAex fonts are not installed."""
