"""Host-side access to My Number cards (マイナンバーカード) and a virtual card to test with.

Two sides in one package: the host side (a reader program: `transport`, `pcsc`,
`inprocess`, `jpki`, `hostcli`) at the top, the card side (the emulator) in `virtualcard`;
`apdu`, `status` and `cardfile` are what both speak, and `cli` is the `mynacard` command
that gathers the sub-commands of both (README.md, "Layout", has the tree).

This package imports neither Textual nor SQLAlchemy: the kiosk and the tests use it, the
issuing service never does (a card is only bytes on the wire to it).
"""
