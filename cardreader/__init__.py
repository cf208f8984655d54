"""Host-side access to My Number cards (マイナンバーカード) and a virtual card to test with.

This package imports neither Textual nor SQLAlchemy: the kiosk and the tests use it, the
issuing service never does (a card is only bytes on the wire to it).
"""
