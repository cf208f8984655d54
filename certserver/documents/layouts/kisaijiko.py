"""住民票記載事項証明書: the municipality's fixed format, certifying the listed items."""

from __future__ import annotations

from certserver.documents.content import CertificateContent, JuminhyoContent
from certserver.documents.layouts.base import Layout, heading
from certserver.documents.layouts.juminhyo import household_lines

CERTIFY = "上記の事項は、住民票に記載されている事項と相違ないことを証明する。"


def build(content: CertificateContent) -> Layout:
    body = content.body
    if not isinstance(body, JuminhyoContent):
        raise TypeError("住民票記載事項証明書 needs JuminhyoContent")
    return Layout(
        title="住民票記載事項証明書",
        subtitle=f"（{len(body.persons)}名）",
        lines=(heading("記載事項"), *household_lines(body)),
        certification=CERTIFY,
    )
