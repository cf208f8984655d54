"""The kiosk API's contract (docs/api.md): the JSON bodies the issuing service answers and
the kiosk sends, as pydantic models both sides import.

It depends on pydantic alone, so the kiosk can parse the service's answers with the very
types the service builds them from without importing the service (it still reaches the
service only over HTTP), and the service never imports the kiosk.
"""
