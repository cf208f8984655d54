"""Refusal codes of the ordering rules and what a kiosk says for each.

The code is the stable part (API error code, tests); the messages are for people, in
Japanese with English beside, as the kiosk shows them. A few codes are confidential: they are
audited, but the kiosk only ever receives `NOT_AVAILABLE_AT_KIOSK` in their place.
"""

from __future__ import annotations

from certserver.services.rules.terms import RuleViolation

MESSAGES: dict[str, tuple[str, str]] = {
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
        "証明書に印字できない文字が含まれるため、コンビニ交付はご利用いただけません。",
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
}


# What the kiosk receives instead of a confidential code. The person at the screen may be
# the one a DV/stalking support measure (支援措置) protects from, holding the protected
# person's card: the answer must not tell a support measure from any other refusal.
NOT_AVAILABLE_AT_KIOSK = (
    "not_available_at_kiosk",
    "この証明書はコンビニでは交付できません。市区町村の窓口にお問い合わせください。",
    "This certificate cannot be issued at a convenience store. Please ask at the municipal office.",
)
CONFIDENTIAL_CODES = frozenset({"dv_support_measure"})


def kiosk_facing(code: str, message_ja: str, message_en: str) -> tuple[str, str, str]:
    """The (code, message_ja, message_en) a kiosk may receive for a refusal: the neutral
    answer in place of a confidential code, anything else unchanged."""
    if code in CONFIDENTIAL_CODES:
        return NOT_AVAILABLE_AT_KIOSK
    return code, message_ja, message_en


def violation(code: str) -> RuleViolation:
    """The RuleViolation for `code` with its messages. Raises KeyError for an unknown code."""
    message_ja, message_en = MESSAGES[code]
    return RuleViolation(code, message_ja, message_en)
