"""What the tests (tests/) and the benchmarks (bench/) share: throw-away test CAs and card
files (`cards`), the vpcd reader slots of the test machine (`vpcd`), the lean HTTP/1.1
client of the load benchmarks (`lean_http`) and pyHanko's PAdES signer (`pyhanko_signer`).
Neither folder imports the other; the product packages never import this one (both checked
by tests/test_architecture.py)."""
