"""One screen per flow step, and the operator panel."""

from __future__ import annotations

from kiosk import flow as f
from kiosk.screens.base import StepScreen
from kiosk.screens.card import (
    AuthenticatingScreen,
    PinScreen,
    PlaceCardScreen,
    ReadingCardScreen,
    RemoveCardScreen,
)
from kiosk.screens.failure import FailedScreen
from kiosk.screens.order import (
    CertificateScreen,
    ConfirmScreen,
    CopiesScreen,
    MunicipalityScreen,
    PersonsScreen,
)
from kiosk.screens.payment import OrderingScreen, PaymentScreen, SettlingScreen
from kiosk.screens.printing import PrintingScreen, TakeItemsScreen
from kiosk.screens.welcome import LanguageScreen, ServiceMenuScreen, StartScreen, TermsScreen

SCREENS: dict[f.Step, type[StepScreen]] = {
    screen.step: screen
    for screen in (
        StartScreen,
        ServiceMenuScreen,
        LanguageScreen,
        TermsScreen,
        PlaceCardScreen,
        ReadingCardScreen,
        PinScreen,
        AuthenticatingScreen,
        RemoveCardScreen,
        MunicipalityScreen,
        CertificateScreen,
        PersonsScreen,
        CopiesScreen,
        ConfirmScreen,
        OrderingScreen,
        PaymentScreen,
        SettlingScreen,
        PrintingScreen,
        TakeItemsScreen,
        FailedScreen,
    )
}


def screen_for(flow: f.KioskFlow) -> StepScreen:
    """A new screen showing the flow's current step."""
    return SCREENS[flow.step](flow)
