"""Facts all three packages share: the card file format, the durable file write, Japan time.

This package imports only the standard library and none of `cardreader`, `certserver` or
`kiosk`; each of them may import it. It holds a fact that more than one side must agree
on, so that it is written once (the card file the issuing service writes and the virtual
card reads; the era table a certificate and a document both print).
"""
