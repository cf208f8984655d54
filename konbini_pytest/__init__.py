"""The emulator as a test harness: a pytest plugin (entry point `pytest11`, module
`konbini_pytest.plugin`) with three fixtures, and the Python API behind them.

- `konbini_service` (`KonbiniService`): the issuing service as a real `certserver serve`
  process on a free 127.0.0.1 port with `init --demo --seed` data in a temporary folder; its
  URL, a kiosk credential factory, and handles that revoke a card, stop a municipality and
  move the pretend clock, each through the service's own commands and data folder.
- `virtual_card` (factory of `HarnessCard`): a demo resident's card, or one issued for the
  test, in a vpcd reader when pcscd runs, else in-process; remove, insert, lock and reset the
  PIN, misbehave on purpose (`card.faults`, cardreader/virtualcard/faults.py).
- `kiosk_driver` (factory of `HarnessKiosk`): the headless kiosk flow on that card against
  that service: `visit(...)` returns a typed `Visit`; `begin`, `enter_pin`, `order`, `pay`,
  `cancel`, `wait` act step by step.

See docs/harness.md. Everything here is for tests: the keys come from a known seed.
"""

from konbini_pytest.card import HarnessCard
from konbini_pytest.kiosk import HarnessKiosk, Visit
from konbini_pytest.service import KioskCredential, KonbiniService, ServiceStartError

__all__ = ["HarnessCard", "HarnessKiosk", "KioskCredential", "KonbiniService", "ServiceStartError", "Visit"]
