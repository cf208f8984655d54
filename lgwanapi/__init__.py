"""The LGWAN contract (docs/lgwan.md): the JSON bodies the J-LIS centre sends to a
municipality's certificate server (証明発行サーバ) and the answers it gets, as pydantic models
both sides import.

Like `kioskapi`, it depends on pydantic (and the kiosk API's menu and order types, which
the centre relays unchanged) and on nothing of the servers, so another vendor's
municipality server can be written against it.
"""
