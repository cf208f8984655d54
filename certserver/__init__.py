"""The issuing service: a test JPKI CA, the resident registry, card authentication,
certificate orders, signed documents and an audit log.

It imports neither `kiosk` nor `cardreader`: a card is only bytes on the wire to it.
"""
