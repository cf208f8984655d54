"""The resident registry (住民基本台帳), its 戸籍, and the municipalities that issue from it.

Everything the rules of the real service read lives here: municipalities with their stop
switch and per-certificate settings, dated fees, closures, households and residents, seal
registrations (印鑑登録), tax records, 戸籍 with their members and 附票, and 本籍地 利用登録.

Statuses are plain strings checked by constraints (not native enums), so SQLite and
PostgreSQL hold the same schema and a new status is a data change, not a type migration.
住民票コード is stored (the registry has it) but no certificate content has a field for it.
"""

from __future__ import annotations

from datetime import date, time
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    String,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from certserver.db.base import Base

# Defaults of the real service (service.md §3): 06:30–23:00 daily.
DEFAULT_OPENS_AT = time(6, 30)
DEFAULT_CLOSES_AT = time(23, 0)
DEFAULT_MAX_COPIES = 10  # not confirmed for the real service: a per-municipality setting


class ResidentStatus(StrEnum):
    """Where a resident's record stands; only ACTIVE records are issued from."""

    ACTIVE = "active"
    MOVED_OUT = "moved_out"  # 転出: the record is a 除票
    DECEASED = "deceased"  # 死亡
    DV_SUPPORT = "dv_support"  # DV・ストーカー等 支援措置 in force
    CHANGE_PENDING = "change_pending"  # a notified change not yet entered


class SealStatus(StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"  # 廃止


class KosekiStatus(StrEnum):
    CURRENT = "current"  # 現在戸籍
    JOSEKI = "joseki"  # 除籍: every member has left; not issued at a kiosk
    KAISEI_GEN = "kaisei_gen"  # 改製原戸籍: replaced by a new format; not issued at a kiosk


def _in(values: type[StrEnum]) -> str:
    return ", ".join(f"'{v.value}'" for v in values)


class Municipality(Base):
    """A 市区町村 that takes part (or not) in the kiosk service."""

    __tablename__ = "municipalities"

    code: Mapped[str] = mapped_column(String(5), primary_key=True)  # 全国地方公共団体コード without check digit
    name: Mapped[str] = mapped_column(String(40))  # 取手市
    name_en: Mapped[str] = mapped_column(String(60))  # Toride City
    prefecture: Mapped[str] = mapped_column(String(10))  # 茨城県
    mayor_title: Mapped[str] = mapped_column(String(40))  # 取手市長
    mayor_name: Mapped[str] = mapped_column(String(40))
    participating: Mapped[bool] = mapped_column(Boolean)
    participation_start: Mapped[date | None] = mapped_column(Date)
    # The per-municipality stop switch (service.md §7, Adachi): an operator halts issuance.
    stopped: Mapped[bool] = mapped_column(Boolean, default=False)
    stop_reason: Mapped[str | None] = mapped_column(String(200))
    allows_my_number_on_juminhyo: Mapped[bool] = mapped_column(Boolean, default=False)

    certificate_settings: Mapped[list[CertificateSetting]] = relationship(
        back_populates="municipality", cascade="all, delete-orphan"
    )


class CertificateSetting(Base):
    """Whether a municipality offers a certificate kind, when, and how many copies at once."""

    __tablename__ = "certificate_settings"

    municipality_code: Mapped[str] = mapped_column(
        ForeignKey("municipalities.code", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)  # CertificateKind value
    offered: Mapped[bool] = mapped_column(Boolean, default=True)
    opens_at: Mapped[time] = mapped_column(Time, default=DEFAULT_OPENS_AT)  # JST
    closes_at: Mapped[time] = mapped_column(Time, default=DEFAULT_CLOSES_AT)  # JST, exclusive
    weekdays_only: Mapped[bool] = mapped_column(Boolean, default=False)  # 戸籍 at many cities
    max_copies: Mapped[int] = mapped_column(Integer, default=DEFAULT_MAX_COPIES)

    municipality: Mapped[Municipality] = relationship(back_populates="certificate_settings")

    __table_args__ = (
        CheckConstraint("max_copies >= 1", name="max_copies_positive"),
        CheckConstraint("opens_at < closes_at", name="hours_ordered"),
    )


class Fee(Base):
    """One row of the dated fee table: a fee per copy from `valid_from` to `valid_to` (inclusive)."""

    __tablename__ = "fees"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    municipality_code: Mapped[str] = mapped_column(ForeignKey("municipalities.code", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    fee_yen: Mapped[int] = mapped_column(Integer)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)  # None: until further notice
    label: Mapped[str] = mapped_column(String(60), default="")  # e.g. "demo value"

    __table_args__ = (
        CheckConstraint("fee_yen >= 0", name="fee_not_negative"),
        CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="period_ordered"),
    )


class Closure(Base):
    """An announced maintenance day (計画停止日). No municipality: the whole service."""

    __tablename__ = "closures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    municipality_code: Mapped[str | None] = mapped_column(
        ForeignKey("municipalities.code", ondelete="CASCADE"), index=True
    )
    closed_on: Mapped[date] = mapped_column(Date, index=True)
    reason: Mapped[str] = mapped_column(String(200))


class Household(Base):
    """A 世帯. Its head (世帯主) is the member whose 続柄 (zokugara) is 世帯主."""

    __tablename__ = "households"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    municipality_code: Mapped[str] = mapped_column(ForeignKey("municipalities.code"), index=True)
    address: Mapped[str] = mapped_column(String(200))

    members: Mapped[list[Resident]] = relationship(back_populates="household", order_by="Resident.id")


class Resident(Base):
    """A person in the 住民基本台帳 of one municipality (current or 除票)."""

    __tablename__ = "residents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # e.g. "toride-0001"
    municipality_code: Mapped[str] = mapped_column(ForeignKey("municipalities.code"), index=True)
    household_id: Mapped[str] = mapped_column(ForeignKey("households.id"), index=True)
    name: Mapped[str] = mapped_column(String(60))  # surname U+3000 given name
    name_kana: Mapped[str | None] = mapped_column(String(120))
    birth_date: Mapped[date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(2))  # 男 / 女
    address: Mapped[str] = mapped_column(String(200))  # full-width digits
    zokugara: Mapped[str] = mapped_column(String(20))  # 続柄: 世帯主, 妻, 子, 父 ...
    became_resident_on: Mapped[date] = mapped_column(Date)  # 住民となった日
    address_since: Mapped[date] = mapped_column(Date)  # 住所を定めた日
    previous_address: Mapped[str | None] = mapped_column(String(200))  # 前住所
    honseki: Mapped[str | None] = mapped_column(String(200))  # 本籍 (Japanese nationals)
    hitto_sha: Mapped[str | None] = mapped_column(String(60))  # 筆頭者
    my_number: Mapped[str | None] = mapped_column(String(12), unique=True)  # 個人番号
    # 住民票コード: kept because the registry has one; never part of any certificate content.
    juminhyo_code: Mapped[str | None] = mapped_column(String(11), unique=True)
    # 外国人住民 items; nationality None means a Japanese national.
    nationality: Mapped[str | None] = mapped_column(String(60))  # 国籍・地域
    residence_card_number: Mapped[str | None] = mapped_column(String(12))  # 在留カード等番号
    residence_status: Mapped[str | None] = mapped_column(String(60))  # 在留資格
    period_of_stay: Mapped[str | None] = mapped_column(String(40))  # 在留期間
    period_expires_on: Mapped[date | None] = mapped_column(Date)  # 在留期間の満了の日
    tsusho: Mapped[str | None] = mapped_column(String(60))  # 通称, where one is registered
    # 住民基本台帳法 第30条の45 区分 (中長期在留者, 特別永住者 ...); None: derived (content_builder)
    foreign_resident_category: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default=ResidentStatus.ACTIVE.value)
    # A character outside the registered set (外字) somewhere in the record: not issuable.
    has_gaiji: Mapped[bool] = mapped_column(Boolean, default=False)

    household: Mapped[Household] = relationship(back_populates="members")
    seal_registrations: Mapped[list[SealRegistration]] = relationship(back_populates="resident")
    tax_records: Mapped[list[TaxRecord]] = relationship(back_populates="resident")

    __table_args__ = (CheckConstraint(f"status IN ({_in(ResidentStatus)})", name="status_known"),)

    @property
    def is_foreign(self) -> bool:
        return self.nationality is not None


class SealRegistration(Base):
    """印鑑登録: the seal a resident registered; only an active one is certified."""

    __tablename__ = "seal_registrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resident_id: Mapped[str] = mapped_column(ForeignKey("residents.id"), index=True)
    registration_number: Mapped[str] = mapped_column(String(20), unique=True)  # 登録番号
    seal_text: Mapped[str] = mapped_column(String(20))
    registered_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default=SealStatus.ACTIVE.value)
    cancelled_on: Mapped[date | None] = mapped_column(Date)

    resident: Mapped[Resident] = relationship(back_populates="seal_registrations")

    __table_args__ = (CheckConstraint(f"status IN ({_in(SealStatus)})", name="status_known"),)


class TaxRecord(Base):
    """個人住民税 for one fiscal year (年度), on the income of the year before."""

    __tablename__ = "tax_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resident_id: Mapped[str] = mapped_column(ForeignKey("residents.id"), index=True)
    fiscal_year: Mapped[int] = mapped_column(Integer)
    declared: Mapped[bool] = mapped_column(Boolean)  # 申告 (or 給与支払報告) on file
    address_on_jan1: Mapped[str] = mapped_column(String(200))  # 賦課期日 (1 January) address
    total_income: Mapped[int] = mapped_column(Integer, default=0)
    salary_income: Mapped[int] = mapped_column(Integer, default=0)
    deductions_total: Mapped[int] = mapped_column(Integer, default=0)
    taxable_income: Mapped[int] = mapped_column(Integer, default=0)
    municipal_tax: Mapped[int] = mapped_column(Integer, default=0)
    prefectural_tax: Mapped[int] = mapped_column(Integer, default=0)
    dependents: Mapped[int] = mapped_column(Integer, default=0)

    resident: Mapped[Resident] = relationship(back_populates="tax_records")

    __table_args__ = (UniqueConstraint("resident_id", "fiscal_year", name="uq_tax_records_resident_year"),)


class Koseki(Base):
    """A 戸籍, kept by the municipality of its 本籍."""

    __tablename__ = "koseki"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    municipality_code: Mapped[str] = mapped_column(ForeignKey("municipalities.code"), index=True)
    honseki: Mapped[str] = mapped_column(String(200))
    hitto_sha: Mapped[str] = mapped_column(String(60))
    compiled_on: Mapped[date] = mapped_column(Date)  # 戸籍編製日
    status: Mapped[str] = mapped_column(String(20), default=KosekiStatus.CURRENT.value)

    members: Mapped[list[KosekiMember]] = relationship(back_populates="koseki", order_by="KosekiMember.position")

    __table_args__ = (CheckConstraint(f"status IN ({_in(KosekiStatus)})", name="status_known"),)


class KosekiMember(Base):
    """A person written in a 戸籍; `resident_id` is None when they live in another municipality."""

    __tablename__ = "koseki_members"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    koseki_id: Mapped[str] = mapped_column(ForeignKey("koseki.id"), index=True)
    resident_id: Mapped[str | None] = mapped_column(ForeignKey("residents.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # order of entry in the 戸籍
    name: Mapped[str] = mapped_column(String(60))
    birth_date: Mapped[date] = mapped_column(Date)
    father: Mapped[str | None] = mapped_column(String(60))
    mother: Mapped[str | None] = mapped_column(String(60))
    zokugara: Mapped[str] = mapped_column(String(20))  # 続柄 in the 戸籍: 長男, 妻 ...
    is_hitto_sha: Mapped[bool] = mapped_column(Boolean, default=False)
    # 身分事項: [{"kind": "出生", "on": "YYYY-MM-DD", "detail": "...", optional "spouse_name"
    # (婚姻: the spouse's name at the marriage), "filed_on" (届出日, YYYY-MM-DD), "informant"}]
    events: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    removed: Mapped[bool] = mapped_column(Boolean, default=False)  # 除籍 (married out, died ...)
    has_gaiji: Mapped[bool] = mapped_column(Boolean, default=False)

    koseki: Mapped[Koseki] = relationship(back_populates="members")
    fuhyo_entries: Mapped[list[FuhyoEntry]] = relationship(back_populates="member", order_by="FuhyoEntry.since")


class FuhyoEntry(Base):
    """A line of the 戸籍の附票: where a member of the 戸籍 lived, and since when."""

    __tablename__ = "fuhyo_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("koseki_members.id"), index=True)
    address: Mapped[str] = mapped_column(String(200))
    since: Mapped[date] = mapped_column(Date)

    member: Mapped[KosekiMember] = relationship(back_populates="fuhyo_entries")


class HonsekiRegistration(Base):
    """本籍地 利用登録: lets a card holder get 戸籍 certificates from the 本籍地 municipality.

    It takes effect some business days after the request (`effective_from`)."""

    __tablename__ = "honseki_registrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resident_id: Mapped[str] = mapped_column(ForeignKey("residents.id"), index=True)
    municipality_code: Mapped[str] = mapped_column(ForeignKey("municipalities.code"), index=True)
    registered_on: Mapped[date] = mapped_column(Date)
    effective_from: Mapped[date] = mapped_column(Date)

    __table_args__ = (
        UniqueConstraint("resident_id", "municipality_code", name="uq_honseki_registrations_resident_municipality"),
        CheckConstraint("effective_from >= registered_on", name="effective_after_registration"),
    )


class ResidentCard(Base):
    """The municipality's own record of which resident holds which card certificate (it
    issued the card, or enrolled a real one, at its window). The JPKI service's record of
    the same certificate names only the municipality; a kiosk's card is resolved to a
    resident here, by the municipality that applied for it."""

    __tablename__ = "resident_cards"

    serial: Mapped[str] = mapped_column(String(40), primary_key=True)  # upper-case hex, as card_certificates
    card_id: Mapped[str] = mapped_column(String(32), index=True)
    resident_id: Mapped[str] = mapped_column(ForeignKey("residents.id"), index=True)
    municipality_code: Mapped[str] = mapped_column(ForeignKey("municipalities.code"), index=True)


class RegistryRevision(Base):
    """One row whose `token` changes, by database triggers, with every write to the
    municipalities' configuration (municipalities, certificate_settings, fees, closures).

    Service processes keep that configuration in memory and check this token once per
    request: an equal token means nothing changed, whoever wrote and however (the CLI, an
    operator's SQL, another worker). The token is random rather than a counter so that a
    rolled-back change can never reappear as the number of a later one.
    """

    __tablename__ = "registry_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    token: Mapped[str] = mapped_column(String(32))
