"""The simulated cash acceptor and printer, the catalogues, and the package's boundaries."""

from __future__ import annotations

import ast
import hashlib
import json
import re
import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import kiosk
from kiosk.driver import coins_for
from kiosk.flow import DENOMINATIONS
from kiosk.i18n import LANGUAGES, catalogue, text
from kiosk.models import Document, DocumentRef
from kiosk.payment import CashAcceptor, CashError
from kiosk.printer import DocumentMismatchError, OutOfPaperError, Printer

KIOSK_DIR = Path(kiosk.__file__).parent
PDF = b"%PDF-1.4 one page"


def ref_of(pdf: bytes, document_id: str = "doc-1") -> DocumentRef:
    return DocumentRef(document_id, hashlib.sha256(pdf).hexdigest())


# -- cash ---------------------------------------------------------------------------------


def test_the_acceptor_takes_only_yen_coins_and_notes_it_knows() -> None:
    acceptor = CashAcceptor()
    for bad in (1, 5, 2000, 0, -100):
        with pytest.raises(CashError):
            acceptor.insert(bad)
    assert acceptor.insert(100) == 100 and acceptor.insert(500) == 600


def test_collecting_keeps_the_fee_and_pays_out_the_change() -> None:
    acceptor = CashAcceptor()
    acceptor.insert(1000)
    settlement = acceptor.collect(350)
    assert (settlement.paid_yen, settlement.change_yen) == (1000, 650)
    assert acceptor.cash_box_yen == 350 and acceptor.escrow_yen == 0 and acceptor.returned_yen == 650


def test_a_refund_returns_the_whole_escrow_and_an_underpaid_collection_takes_nothing() -> None:
    acceptor = CashAcceptor()
    acceptor.insert(100)
    with pytest.raises(CashError):
        acceptor.collect(200)
    assert acceptor.escrow_yen == 100
    assert acceptor.refund() == 100 and acceptor.cash_box_yen == 0


@given(st.integers(min_value=0, max_value=100_000).map(lambda n: n * 10))
def test_coins_for_an_amount_add_up_to_it_in_accepted_money(amount: int) -> None:
    coins = coins_for(amount)
    assert sum(coins) == amount and set(coins) <= set(DENOMINATIONS)


# -- printer ------------------------------------------------------------------------------


def test_the_printer_prints_only_documents_bound_to_the_transaction(tmp_path: Path) -> None:
    printer = Printer(tmp_path / "tray", sheets=10)
    good = Document(ref_of(PDF), "tx-A", PDF)
    other_tx = Document(ref_of(PDF), "tx-B", PDF)
    changed = Document(ref_of(PDF), "tx-A", PDF + b"tampered")
    unlisted = Document(ref_of(PDF, "doc-9"), "tx-A", PDF)
    for bad in (other_tx, changed, unlisted):
        with pytest.raises(DocumentMismatchError):
            printer.print_documents("tx-A", (ref_of(PDF),), (bad,))
    assert not (tmp_path / "tray").exists() and printer.sheets == 10
    with pytest.raises(DocumentMismatchError):  # one more than the order listed
        printer.print_documents("tx-A", (ref_of(PDF),), (good, good))
    progress: list[tuple[int, int]] = []
    (path,) = printer.print_documents("tx-A", (ref_of(PDF),), (good,), lambda d, t: progress.append((d, t)))
    assert path.read_bytes() == PDF and path.name == "tx-A-1.pdf"
    assert progress == [(1, 1)] and printer.sheets == 9


def test_without_enough_paper_nothing_is_printed(tmp_path: Path) -> None:
    printer = Printer(tmp_path, sheets=0)
    with pytest.raises(OutOfPaperError):
        printer.print_documents("tx-A", (ref_of(PDF),), (Document(ref_of(PDF), "tx-A", PDF),))
    assert list(tmp_path.iterdir()) == []


# -- catalogues -----------------------------------------------------------------------------


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_both_catalogues_have_the_same_keys_and_placeholders() -> None:
    ja, en = catalogue("ja"), catalogue("en")
    assert set(ja) == set(en)
    for key in ja:
        assert _placeholders(ja[key]) == _placeholders(en[key]), key


def test_every_text_key_the_kiosk_uses_exists_and_every_failure_has_a_message() -> None:
    from kiosk.flow import Failure, Step

    used: set[str] = set()
    for path in KIOSK_DIR.rglob("*.py"):
        used |= set(re.findall(r'(?:\bt|\btext)\((?:[a-z_.]+, )?"([a-z_]+\.[a-z_.]+)"', path.read_text()))
    assert len(used) > 50
    used |= {f"failure.{failure.value}" for failure in Failure} | {f"{step.value}.title" for step in Step}
    for language in LANGUAGES:
        missing = sorted(key for key in used if key not in catalogue(language))
        assert missing == [], (language, missing)


def test_widgets_and_screens_hold_no_text_of_their_own() -> None:
    for folder in ("screens", "widgets"):
        for path in (KIOSK_DIR / folder).glob("*.py"):
            tree = ast.parse(path.read_text())
            docstrings = {
                id(node.body[0].value)
                for node in ast.walk(tree)
                if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                and node.body
                and isinstance(node.body[0], ast.Expr)
            }
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                    assert not re.search(r"[\u3000-\u30ff\u4e00-\u9fff\uff00-\uffef]", node.value), (
                        f"{path.name}: Japanese text {node.value!r} belongs in the catalogues"
                    )


def test_a_text_is_filled_in_each_language() -> None:
    assert text("ja", "payment.fee", fee=300) == "手数料：300円"
    assert text("en", "payment.fee", fee=300) == "Fee: 300 yen"


# -- boundaries -----------------------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_kiosk_reaches_the_service_only_over_http() -> None:
    for path in KIOSK_DIR.rglob("*.py"):
        assert "certserver" not in _imports(path), path


def test_the_flow_is_plain_python_without_textual_or_io() -> None:
    imports = _imports(KIOSK_DIR / "flow.py")
    assert imports <= {"__future__", "time", "collections", "dataclasses", "enum", "kiosk"}, imports
    assert json.dumps(sorted(imports))


def test_an_unforeseen_error_while_performing_an_effect_becomes_a_failure_event(tmp_path: Path) -> None:
    from kiosk import flow as f
    from kiosk.runner import EffectRunner

    class BrokenClient:
        def pay(self, transaction_id: str, fee_yen: int) -> None:
            raise RuntimeError("a bug")

    runner = EffectRunner(None, BrokenClient(), CashAcceptor(), Printer(tmp_path))  # type: ignore[arg-type]
    events: list[f.Event] = []
    runner.run(f.RecordPayment(7, "tx-1", 200, 500), events.append)
    assert events == [f.EffectCrashed(7)]
