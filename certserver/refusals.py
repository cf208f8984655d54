"""Coded refusals and the one catalogue of what a person is told for each code.

A refusal carries a stable `code` (the API contract, docs/api.md) and two messages for the
person at the kiosk, Japanese with English beside. Every refusal class of the service
derives from CodedRefusal, and every message is written here once, by code; a message
may name facts of the moment (`{fee}`, `{state}`), filled in by `CodedRefusal.of`.

This module imports nothing of the service, so every layer (rules, services, documents,
API) may use it.
"""

from __future__ import annotations

from typing import Self

MESSAGES: dict[str, tuple[str, str]] = {
    # -- the ordering rules (services.rules) ------------------------------------------------
    "resident_not_found": (
        "住民記録が見つかりません。市区町村の窓口へお問い合わせください。",
        "No resident record was found. Please ask at the municipal office.",
    ),
    "resident_moved_out": (
        "転出されているため、この市区町村の証明書は交付できません。",
        "You have moved out of this municipality, so it cannot issue certificates to you.",
    ),
    "resident_deceased": (
        "この方の証明書はコンビニ交付では交付できません。",
        "Certificates for this person cannot be issued at a convenience store.",
    ),
    "dv_support_measure": (
        "支援措置の対象となっているため、コンビニ交付はご利用いただけません。窓口へお越しください。",
        "Support measures are in force for this record; please apply at the municipal office.",
    ),
    "change_pending": (
        "届出の処理中のため、現在は交付できません。窓口へお問い合わせください。",
        "A notified change is still being processed; certificates cannot be issued now.",
    ),
    "gaiji_in_record": (
        "証明書に印字できない文字（外字）が含まれるため、コンビニ交付はご利用いただけません。市区町村の窓口で請求してください。",
        "The record contains a character that cannot be printed here; please apply at the office.",
    ),
    "same_day_move_in": (
        "住民となった当日はご利用いただけません。翌日以降にご利用ください。",
        "The service is available from the day after you became a resident.",
    ),
    "under_15": (
        "15歳未満の方はコンビニ交付をご利用いただけません。",
        "Persons under 15 cannot use the convenience-store service.",
    ),
    "seal_not_registered": (
        "印鑑登録がないため、印鑑登録証明書は交付できません。",
        "No seal is registered, so a seal registration certificate cannot be issued.",
    ),
    "seal_cancelled": (
        "印鑑登録が廃止されているため、印鑑登録証明書は交付できません。",
        "The seal registration has been cancelled; no certificate can be issued.",
    ),
    "tax_no_declaration": (
        "申告の記録がないため、所得・課税証明書は交付できません。",
        "No tax declaration is on file, so no income and tax certificate can be issued.",
    ),
    "tax_year_not_offered": (
        "コンビニ交付では最新年度の証明書のみ交付できます。",
        "Only the latest fiscal year is issued at a convenience store.",
    ),
    "person_not_allowed": (
        "選択された方の証明書は交付できません。",
        "A certificate for the chosen person cannot be issued here.",
    ),
    "option_not_allowed": (
        "選択された記載事項は指定できません。",
        "The chosen optional item is not available for this certificate.",
    ),
    "my_number_not_allowed": (
        "この市区町村では個人番号入りの住民票はコンビニ交付できません。",
        "This municipality does not issue 住民票 with My Number at convenience stores.",
    ),
    "outside_hours": (
        "この証明書の利用時間外です。",
        "This certificate is not available at this hour.",
    ),
    "year_end_closure": (
        "年末年始（12月29日～1月3日）はご利用いただけません。",
        "The service is closed over the year end (29 December to 3 January).",
    ),
    "maintenance_day": (
        "本日はシステムの保守のためご利用いただけません。",
        "The service is closed today for maintenance.",
    ),
    "municipality_stopped": (
        "この市区町村の証明書交付は現在停止しています。",
        "Certificate issuance by this municipality is currently stopped.",
    ),
    "municipality_not_participating": (
        "この市区町村はコンビニ交付を行っていません。",
        "This municipality does not take part in the convenience-store service.",
    ),
    "municipality_not_available": (
        "この市区町村の証明書はご利用いただけません。",
        "Certificates from this municipality are not available to you.",
    ),
    "honseki_not_registered": (
        "本籍地の証明書には事前の利用登録が必要です。",
        "Certificates from your 本籍地 need a prior usage registration (利用登録).",
    ),
    "honseki_registration_pending": (
        "本籍地の利用登録の手続き中です。登録完了後にご利用ください。",
        "Your 本籍地 usage registration is still being processed; it can be used once it is complete.",
    ),
    "koseki_not_found": (
        "この市区町村に戸籍がありません。",
        "This municipality keeps no family register (戸籍) for you.",
    ),
    "koseki_not_current": (
        "除籍・改製原戸籍はコンビニ交付では交付できません。",
        "Closed or superseded family registers (除籍・改製原戸籍) are not issued here.",
    ),
    "too_many_copies": (
        "指定できる通数を超えています。",
        "Too many copies for one order.",
    ),
    "invalid_copies": (
        "通数は1通以上を指定してください。",
        "Choose at least one copy.",
    ),
    "certificate_not_offered": (
        "この証明書はこの市区町村ではコンビニ交付を行っていません。",
        "This municipality does not offer this certificate at convenience stores.",
    ),
    "no_fee_defined": (
        "手数料が設定されていないため交付できません。",
        "No fee is set for this certificate today, so it cannot be issued.",
    ),
    # What the kiosk receives instead of a confidential code (services.rules.violations).
    "not_available_at_kiosk": (
        "この証明書はコンビニでは交付できません。市区町村の窓口にお問い合わせください。",
        "This certificate cannot be issued at a convenience store. Please ask at the municipal office.",
    ),
    # -- transactions (centre.transactions) ---------------------------------------------
    "transaction_not_found": ("取引が見つかりません。", "No such transaction."),
    "transaction_ended": ("この取引は終了しています。", "The transaction has ended."),
    "invalid_state": (
        "この取引では今その操作はできません（状態: {state}）。",
        "Cannot {action} a transaction in state '{state}'.",
    ),
    "transaction_expired": (
        "時間切れのため取引は終了しました。最初からやり直してください。",
        "The transaction timed out and was ended. Please start again.",
    ),
    "amount_mismatch": (
        "金額が一致しません（手数料 {fee} 円）。",
        "The amount does not match the fee ({fee} yen).",
    ),
    "documents_not_ready": ("証明書の準備ができていません。", "The documents are not ready yet."),
    "document_not_found": ("証明書が見つかりません。", "No such document in this transaction."),
    "documents_not_fetched": (
        "証明書がまだ受け取られていません。",
        "A document of this transaction has not been downloaded yet.",
    ),
    "render_failed": ("証明書を作成できませんでした。", "The certificate could not be rendered."),
    # -- the LGWAN link between the centre and a municipality (certserver.centre, .municipal) --
    "municipality_unavailable": (
        "市区町村の証明書発行サーバーから応答がありません。時間をおいてもう一度お試しください。",
        "The municipality's certificate server did not answer. Please try again later.",
    ),
    "municipality_not_hosted": (
        "この証明書発行サーバーはその市区町村を扱っていません。",
        "This certificate server does not serve that municipality.",
    ),
    "request_id_reused": (
        "別の要求に使われた要求IDです。",
        "This request id was used for a different call.",
    ),
    "order_settled": (
        "この要求はすでに完了しています。",
        "This order has already been settled.",
    ),
    "order_unknown": (
        "この要求IDの注文は記録にありません。",
        "No order was made under this request id.",
    ),
    "outcome_mismatch": (
        "結果が注文の証明書番号と一致しません。",
        "The outcome does not match the order's certificate numbers.",
    ),
    # -- card authentication (services.authentication) --------------------------------------
    "challenge_missing": ("認証用のチャレンジがありません。", "No challenge was issued for this transaction."),
    "challenge_used": ("このチャレンジは使用済みです。", "This challenge was already used."),
    "challenge_expired": (
        "認証の有効時間が過ぎました。最初からやり直してください。",
        "The challenge expired. Please start again.",
    ),
    # -- the documents (documents) -----------------------------------------------------------
    # gaiji_in_record: the rules' entry above (the renderer refuses with the same code).
    "font_missing": (
        "フォント {file_name} がありません。fonts-ipaexfont-mincho と fonts-ipaexfont-gothic を導入してください。",
        "font {file_name} not found; install fonts-ipaexfont-mincho and fonts-ipaexfont-gothic "
        "(or set KONBINI_FONT_DIR)",
    ),
    "signer_missing": (
        "この市区町村の証明書署名鍵がありません。",
        "no document-signing key for municipality {municipality_code} (run `certserver init`)",
    ),
    "signer_invalid": ("署名鍵の形式が不正です。", "unexpected key types for {municipality_code}"),
    # -- the API itself (api) ----------------------------------------------------------------
    "unauthorized_kiosk": ("端末の認証に失敗しました。", "The kiosk credential is missing or wrong."),
    "invalid_request": ("要求の形式が正しくありません。", "{detail}"),
    "idempotency_key_reused": (
        "同じ再送キーで別の要求が送られました。",
        "This Idempotency-Key was used for a different request.",
    ),
    "request_in_progress": (
        "処理中です。しばらくお待ちください。",
        "The first request with this Idempotency-Key is still running.",
    ),
    "payload_too_large": ("要求が大きすぎます。", "The request body is too large."),
    "uri_too_long": ("要求のアドレスが長すぎます。", "The request's address is too long."),
    "unsupported_media_type": ("この形式の要求は受け付けられません。", "The request's media type is not accepted."),
    "not_configured": ("この機能は現在ご利用いただけません。", "This part of the service is not configured."),
    "not_found": ("見つかりません。", "Not found."),
    "method_not_allowed": ("この操作はできません。", "Method not allowed."),
    "http_error": ("要求を処理できませんでした。", "{detail}"),
    "internal_error": ("システムエラーが発生しました。", "Internal error."),
}


def messages(code: str, **facts: object) -> tuple[str, str]:
    """(message_ja, message_en) of `code` with `facts` filled in. Raises KeyError for a code
    the catalogue lacks or a fact its messages name but `facts` does not give."""
    message_ja, message_en = MESSAGES[code]
    return message_ja.format(**facts), message_en.format(**facts)


class CodedRefusal(Exception):
    """A refusal: `code` is stable (API error code), the messages are for people."""

    def __init__(self, code: str, message_ja: str, message_en: str) -> None:
        super().__init__(f"{code}: {message_en}")
        self.code = code
        self.message_ja = message_ja
        self.message_en = message_en

    @classmethod
    def of(cls, code: str, **facts: object) -> Self:
        """The refusal `code` with its catalogue messages. Raises KeyError (see `messages`)."""
        return cls(code, *messages(code, **facts))

    def __reduce__(self) -> tuple[type[CodedRefusal], tuple[str, str, str]]:
        # Pickle rebuilds an exception from `args` (the one formatted message) by default;
        # a refusal raised in another process (a render) must arrive as itself.
        return (type(self), (self.code, self.message_ja, self.message_en))
