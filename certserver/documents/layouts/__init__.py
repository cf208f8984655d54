"""One layout module per certificate type; `layout_for` picks the one for a content."""

from __future__ import annotations

from collections.abc import Callable

from certserver.documents.content import CertificateContent, CertificateKind
from certserver.documents.layouts import fuhyo, inkan, juminhyo, kisaijiko, koseki, shotoku_kazei
from certserver.documents.layouts.base import Layout

_BUILDERS: dict[CertificateKind, Callable[[CertificateContent], Layout]] = {
    CertificateKind.JUMINHYO: juminhyo.build,
    CertificateKind.KISAIJIKO: kisaijiko.build,
    CertificateKind.INKAN: inkan.build,
    CertificateKind.SHOTOKU_KAZEI: shotoku_kazei.build,
    CertificateKind.KOSEKI_ZENBU: koseki.build,
    CertificateKind.KOSEKI_KOJIN: koseki.build,
    CertificateKind.KOSEKI_FUHYO: fuhyo.build,
}


def layout_for(content: CertificateContent) -> Layout:
    """The layout of `content`. Raises TypeError when the body does not match the kind."""
    return _BUILDERS[content.kind](content)
