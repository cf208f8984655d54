"""Certificate PDFs print exactly what their content says, in embedded Japanese fonts."""

from __future__ import annotations

import io
import itertools
import re
from dataclasses import replace
from pathlib import Path

import documents_support
import pytest
from documents_support import GAIJI
from hypothesis import example, given
from hypothesis import strategies as st
from pypdf import PdfReader
from reportlab.lib.units import mm

from certserver.documents.content import CertificateContent, CertificateKind, JuminhyoPerson
from certserver.documents.errors import DocumentRefusedError, SignerNotFoundError
from certserver.documents.fonts import missing_characters
from certserver.documents.layouts.base import Cell, Line
from certserver.documents.render import FOOTER_TOP, FRAME_BOTTOM, FRAME_TOP, paginate
from certserver.documents.service import DocumentService
from certserver.documents.signing import SignerStore
from konbini_testkit import certificate_samples as samples

ca_dir = documents_support.ca_dir  # fixture


@pytest.fixture(scope="module")
def service(ca_dir: Path) -> DocumentService:
    return DocumentService(SignerStore.open(ca_dir))


def page_texts(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def text_lines(pdf: bytes) -> list[str]:
    """The printed fields: text runs on one baseline are joined by an ASCII space, which no
    field contains (names separate surname and given name with U+3000)."""
    return [
        cell.strip()
        for text in page_texts(pdf)
        for line in text.splitlines()
        for cell in line.split(" ")
        if cell.strip()
    ]


def render_text(service: DocumentService, content: CertificateContent) -> tuple[str, list[str]]:
    pdf = service.render(content).pdf
    return "\n".join(page_texts(pdf)), text_lines(pdf)


JUMINHYO_OPTIONS = list(itertools.product([True, False], repeat=5))


@pytest.mark.parametrize(("whole", "setainushi", "honseki", "my_number", "foreign"), JUMINHYO_OPTIONS)
def test_juminhyo_prints_exactly_the_chosen_items(
    service: DocumentService,
    whole: bool,
    setainushi: bool,
    honseki: bool,
    my_number: bool,
    foreign: bool,
) -> None:
    persons = samples.HOUSEHOLD if whole else (samples.HOUSEHOLD[0], samples.HOUSEHOLD[3])
    content = samples.juminhyo(
        persons=persons,
        whole_household=whole,
        setainushi=setainushi,
        honseki=honseki,
        my_number=my_number,
        foreign_items=foreign,
    )
    text, lines = render_text(service, content)
    for person in samples.HOUSEHOLD:
        assert (person.name in lines) == (person in persons), person.name
    assert "住民票コード" not in text
    for person in persons:
        assert (person.my_number in text) == my_number
    assert ("個人番号" in lines) == my_number
    assert ("続柄" in lines) == setainushi
    assert ("世帯主" in lines) == setainushi
    assert ("本籍" in lines) == honseki
    assert ("筆頭者" in lines) == honseki
    assert ("AB12345678CD" in text) == foreign
    assert ("在留資格" in lines) == foreign
    omitted = [
        item
        for item, shown in (
            ("世帯主・続柄", setainushi),
            ("本籍・筆頭者", honseki),
            ("個人番号", my_number),
        )
        if not shown
    ]
    assert ("省略事項" in lines) == bool(omitted)
    for item in omitted:
        assert item in text
    assert ("この写しは、世帯全員の住民票の原本と相違ないことを証明する。" in text) == whole
    assert ("この写しは、住民票の原本と相違ないことを証明する。" in text) == (not whole)


def test_only_foreign_residents_carry_foreign_items(service: DocumentService) -> None:
    content = samples.juminhyo(persons=samples.HOUSEHOLD[:3], foreign_items=True)
    _, lines = render_text(service, content)
    assert "国籍・地域" not in lines


@pytest.mark.parametrize("stem", list(samples.one_of_each()))
def test_every_certificate_type_has_its_frame(service: DocumentService, stem: str) -> None:
    content = samples.one_of_each()[stem]
    document = service.render(content)
    text = "\n".join(page_texts(document.pdf))
    lines = text_lines(document.pdf)
    koseki = content.kind in (CertificateKind.KOSEKI_ZENBU, CertificateKind.KOSEKI_KOJIN)
    for name in content.subject_names():  # a 戸籍 writes its persons by 名 alone
        assert (name.split("\u3000")[-1] if koseki else name) in lines, name
    assert content.kind.title_ja in lines
    assert content.certificate_number in text
    assert "令和8年11月26日" in lines  # issue date in 和暦
    assert "茨城県取手市長　見本　一郎" in text
    assert "以下余白" in lines
    assert "住民票コード" not in text
    assert document.pages == len(page_texts(document.pdf))


CERTIFYING = {
    CertificateKind.INKAN: "この写しは、登録されている印影と相違ないことを証明する。",
    CertificateKind.KOSEKI_ZENBU: "これは、戸籍に記録されている事項の全部を証明した書面である。",
    CertificateKind.KOSEKI_KOJIN: "これは、戸籍中の一部の者について記録されている事項の全部を証明した書面である。",
    CertificateKind.KOSEKI_FUHYO: "この写しは、戸籍の附票の原本と相違ないことを証明する。",
    CertificateKind.KISAIJIKO: "上記の事項は、住民票に記載されている事項と相違ないことを証明する。",
    CertificateKind.SHOTOKU_KAZEI: "上記のとおり証明する。",
}


@pytest.mark.parametrize("content", [c for c in samples.one_of_each().values() if c.kind in CERTIFYING], ids=str)
def test_each_type_carries_its_certifying_sentence(service: DocumentService, content: CertificateContent) -> None:
    text, _ = render_text(service, content)
    assert CERTIFYING[content.kind] in text


def test_type_specific_items_are_printed(service: DocumentService) -> None:
    inkan, _ = render_text(service, samples.inkan())
    assert "第20100601号" in inkan and "印影" in inkan
    tax, tax_lines = render_text(service, samples.tax())
    for figure in (
        "6,500,000円",
        "4,760,000円",
        "200,300円",
        "132,700円",
        "333,000円",
        "令和8年度",
        "令和7年分",
    ):
        assert figure in tax
    assert "給与所得" in tax_lines and tax_lines[tax_lines.index("給与所得") + 1] == "4,760,000円"
    koseki, _ = render_text(service, samples.koseki(zenbu=False, persons=samples.KOSEKI_PERSONS[2:]))
    assert "【出生地】茨城県取手市" in koseki
    assert "平成元年1月8日" in koseki


def test_a_kojin_certificate_names_only_the_chosen_persons(service: DocumentService) -> None:
    content = samples.koseki(zenbu=False, persons=samples.KOSEKI_PERSONS[1:2])
    _, lines = render_text(service, content)
    assert "花子" in lines
    assert "一郎" not in lines and "見本　一郎" not in lines
    assert "戸籍に記録されている者" in lines


def test_a_large_household_runs_over_numbered_pages(service: DocumentService) -> None:
    persons = tuple(
        replace(samples.HOUSEHOLD[1], name=f"見本　{given}", name_kana=None) for given in "一二三四五六七八九十百千"
    )
    content = samples.juminhyo(persons=persons, foreign_items=False)
    document = service.render(content)
    texts = page_texts(document.pdf)
    assert document.pages == len(texts) >= 3
    for number, text in enumerate(texts, start=1):
        assert f"（{number}／{len(texts)}）" in text
        assert "住民票の写し" in text
    assert [t.count("以下余白") for t in texts] == [0] * (len(texts) - 1) + [1]
    certify = "この写しは、世帯全員の住民票の原本と相違ないことを証明する。"
    assert [certify in t for t in texts] == [False] * (len(texts) - 1) + [True]
    all_lines = text_lines(document.pdf)
    for person in persons:
        assert all_lines.count(person.name) == 1


def test_fonts_are_embedded_subsets_of_ipaex_and_nothing_else(service: DocumentService) -> None:
    reader = PdfReader(io.BytesIO(service.render(samples.juminhyo()).pdf))
    fonts = {}
    for page in reader.pages:
        for name, ref in page["/Resources"]["/Font"].items():
            fonts[name] = ref.get_object()
    assert fonts
    for font in fonts.values():
        assert re.fullmatch(r"/[A-Z]{6}\+IPAex(Mincho|Gothic)", font["/BaseFont"]), font["/BaseFont"]
        descriptor = font["/FontDescriptor"].get_object()
        embedded = descriptor["/FontFile2"].get_object()
        assert len(embedded.get_data()) < 200_000  # a subset, not the 4 MB font
    raw = service.render(samples.inkan()).pdf
    assert b"Helvetica" not in raw


def test_a_character_outside_the_font_is_found() -> None:
    assert missing_characters(f"{GAIJI}田　太郎") == {GAIJI}
    assert missing_characters("髙橋　﨑子\n") == set()


def test_gaiji_is_refused_before_anything_is_rendered_or_signed(tmp_path: Path) -> None:
    no_keys = DocumentService(SignerStore.open(tmp_path / "ca"))  # any signing would fail
    person = replace(samples.HOUSEHOLD[0], name=f"{GAIJI}田　太郎")
    content = samples.juminhyo(persons=(person,))
    with pytest.raises(DocumentRefusedError) as refused:
        no_keys.render(content)
    assert refused.value.code == "gaiji_in_record"
    assert "外字" in refused.value.message_ja
    with pytest.raises(SignerNotFoundError):
        no_keys.render(samples.juminhyo(persons=(samples.HOUSEHOLD[0],)))


def test_gaiji_anywhere_in_the_content_is_refused(service: DocumentService) -> None:
    content = samples.inkan()
    content = replace(content, body=replace(content.body, seal_text=f"{GAIJI}"))
    with pytest.raises(DocumentRefusedError):
        service.render(content)


def test_a_chosen_member_certificate_never_shows_other_members(service: DocumentService) -> None:
    persons: tuple[JuminhyoPerson, ...] = (samples.HOUSEHOLD[2],)
    content = samples.juminhyo(persons=persons, whole_household=False, my_number=True)
    text, lines = render_text(service, content)
    assert "見本　一郎" in lines
    for other in (samples.HOUSEHOLD[1], samples.HOUSEHOLD[3]):
        assert other.name not in text and other.my_number not in text


def test_concurrent_renders_never_mix_documents(service: DocumentService, ca_dir: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from certserver.documents.verification import TrustStore, verify_pdf

    givens = "一二三四五六七八九十百千万億兆京"
    contents = [
        samples.juminhyo(
            persons=(replace(samples.HOUSEHOLD[0], name=f"並行　{given}", my_number=f"{index:012d}"),),
            whole_household=False,
            my_number=True,
            number=f"R8-{index:06d}",
        )
        for index, given in enumerate(givens)
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:
        documents = list(pool.map(service.render, contents))
    trust = TrustStore.from_ca_dir(ca_dir)
    for index, (content, document) in enumerate(zip(contents, documents, strict=True)):
        text = "\n".join(page_texts(document.pdf))
        names = [n for n in (f"並行　{g}" for g in givens) if n in text]
        assert names == [content.body.persons[0].name]
        assert f"{index:012d}" in text
        result = verify_pdf(document.pdf, trust)
        assert result.valid and result.certificate_number == content.certificate_number


def test_background_seals_and_qr_are_vector_drawings_not_images(service: DocumentService) -> None:
    pdf = service.render(samples.inkan()).pdf
    xobjects = PdfReader(io.BytesIO(pdf)).pages[0]["/Resources"]["/XObject"]
    assert {ref.get_object()["/Subtype"] for ref in xobjects.values()} == {"/Form"}
    assert re.search(rb"/Subtype\s*/Image", pdf) is None  # object dictionaries are not compressed


@given(
    st.lists(st.sampled_from([4.0, 6.5, 7.5, 12.0, 34.0]), min_size=0, max_size=120),
    st.integers(0, 6),
)
@example([4.0] * 17 + [34.0] * 9, 0)  # a last page of lines with no block end, taller than a last page holds
def test_pagination_keeps_every_line_in_order_within_the_frame(heights: list[float], rule_every: int) -> None:
    lines = [
        Line(
            (Cell(0, f"line {index}"),),
            height=height,
            rule=bool(rule_every) and index % rule_every == 0,
        )
        for index, height in enumerate(heights)
    ]
    pages = paginate(lines)
    assert [line for page in pages for line in page] == lines
    full = (FRAME_TOP - FRAME_BOTTOM) / mm - 4
    last = (FRAME_TOP - FOOTER_TOP) / mm - 4
    for page in pages[:-1]:
        assert sum(line.height for line in page) <= full
    assert sum(line.height for line in pages[-1]) <= last
    assert pages[-1] or not lines  # the certification never stands on a page of its own


def test_missing_fonts_are_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from certserver.documents.errors import FontNotFoundError
    from certserver.documents.fonts import MINCHO, font_path

    monkeypatch.setenv("KONBINI_FONT_DIR", str(tmp_path))
    with pytest.raises(FontNotFoundError) as missing:
        font_path(MINCHO)
    assert "fonts-ipaexfont-mincho" in missing.value.message_en


def seal_columns_printed(pdf: bytes, min_size: float = 14.0) -> list[str]:
    """The large characters in the certification area (the mayor's seal), grouped into
    columns by position and read as a seal is: columns right to left, each top to bottom."""
    glyphs: list[tuple[float, float, str]] = []

    def visit(text: str, cm: list[float], tm: list[float], font: object, size: float) -> None:
        if text.strip() and size * tm[0] >= min_size and tm[5] < 100 * mm:
            glyphs.append((tm[4], tm[5], text.strip()))

    PdfReader(io.BytesIO(pdf)).pages[-1].extract_text(visitor_text=visit)
    columns: list[list[tuple[float, float, str]]] = []
    for glyph in sorted(glyphs, reverse=True):  # right-most first
        if columns and columns[-1][0][0] - glyph[0] < 3 * mm:  # proportional kana: near x
            columns[-1].append(glyph)
        else:
            columns.append([glyph])
    return ["".join(g[2] for g in sorted(column, key=lambda g: -g[1])) for column in columns]


@pytest.mark.parametrize(
    ("mayor_title", "columns"),
    [
        ("つくば市長", ["つくば", "市長", "之印"]),
        ("取手市長", ["取手市", "長之印"]),
        ("市長", ["市長", "之印"]),
        ("龍ケ崎市長", ["龍ケ崎", "市長", "之印"]),
    ],
)
def test_the_mayors_seal_reads_in_columns_without_a_lone_character(
    service: DocumentService, mayor_title: str, columns: list[str]
) -> None:
    """Seals read column by column from the right; a seal of 4 or 7 characters is laid out
    2+2 or 3+2+2 (つくば・市長・之印), never leaving 印 alone atop the left column."""
    content = samples.inkan()
    content = replace(content, issuer=replace(content.issuer, mayor_title=mayor_title))
    assert seal_columns_printed(service.render(content).pdf) == columns


def test_the_registered_seal_impression_is_printed_in_black(service: DocumentService) -> None:
    """The 印影 is a reproduction of the registered impression, printed in black; only the
    mayor's seal is red."""
    from pypdf.generic import ContentStream

    reader = PdfReader(io.BytesIO(service.render(samples.inkan()).pdf))
    page = reader.pages[0]
    stroke = (0.0, 0.0, 0.0)
    ring_colours: set[tuple[float, ...]] = set()
    square_colours: set[tuple[float, ...]] = set()
    for operands, operator in ContentStream(page.get_contents(), reader).operations:
        if operator == b"RG":
            stroke = tuple(float(v) for v in operands)
        elif operator == b"c":  # curves: only the seal ring is drawn with them on the page
            ring_colours.add(stroke)
        elif operator == b"re" and stroke != (0.0, 0.0, 0.0):
            square_colours.add(stroke)
    assert ring_colours == {(0.0, 0.0, 0.0)}
    assert len(square_colours) == 1 and next(iter(square_colours))[0] > 0.5  # the red 職印


@pytest.mark.parametrize("size", range(1, 13))
def test_the_certification_stays_with_the_last_person(service: DocumentService, size: int) -> None:
    """However the household falls over pages, the last page holds the last person's block
    with the certification: never a page with only 以下余白, 省略事項 or the certifying sentence."""
    persons = tuple(
        replace(samples.HOUSEHOLD[1], name=f"見本　{given}", name_kana=None)
        for given in "一二三四五六七八九十百千"[:size]
    )
    document = service.render(samples.juminhyo(persons=persons, foreign_items=False))
    texts = page_texts(document.pdf)
    for text in texts:
        assert any(person.name in text for person in persons), text
    assert persons[-1].name in texts[-1]
    assert "この写しは、世帯全員の住民票の原本と相違ないことを証明する。" in texts[-1]


def test_koseki_certificates_follow_the_real_layout(service: DocumentService) -> None:
    """【名】 (not 【氏名】) on the person line, the spouse's name at the marriage, 【届出日】 and
    【届出人】 on births, and 「次頁に続く」 at the foot of every page but the last."""
    document = service.render(samples.koseki(zenbu=True))
    texts = page_texts(document.pdf)
    lines = text_lines(document.pdf)
    assert document.pages == 2
    assert "【氏名】" not in lines and lines.count("【名】") == 3
    assert [lines[i + 1] for i, line in enumerate(lines) if line == "【名】"] == ["太郎", "花子", "一郎"]
    assert "【配偶者氏名】試験　花子" in lines  # 太郎's spouse as she was called at the marriage
    assert "【配偶者氏名】見本　太郎" in lines
    assert lines.count("【届出人】父") == 2 and lines.count("【届出人】母") == 1
    assert "【届出日】昭和50年4月10日" in lines
    assert ["次頁に続く" in text for text in texts] == [True, False]
    kojin = page_texts(service.render(samples.koseki(zenbu=False, persons=samples.KOSEKI_PERSONS[2:])).pdf)
    assert all("次頁に続く" not in text for text in kojin)


def test_a_foreign_residents_block_uses_the_western_calendar_with_tsusho_and_category(
    service: DocumentService,
) -> None:
    """As municipalities print them: a foreign resident's dates in the Western calendar, the
    通称 under the name, the 第30条の45 区分 with the foreign items; Japanese members keep 和暦."""
    _, lines = render_text(service, samples.juminhyo())
    smith = lines[lines.index("スミス　アンナ") : lines.index("以下余白")]
    assert smith[1:3] == ["通称", "スミス　杏奈"]
    for western in ("1999年7月30日", "2024年4月1日", "2027年3月31日"):
        assert western in smith
    assert not any(line.startswith(("平成", "令和")) for line in smith)
    assert smith[smith.index("第30条の45規定区分") + 1] == "中長期在留者"
    assert "昭和50年4月3日" in lines  # 見本　太郎, a Japanese national
