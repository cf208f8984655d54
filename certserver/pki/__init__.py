"""The service's TEST-ONLY JPKI certification authority.

ca          the three test CAs (user authentication, signing, municipal documents)
profiles    certificate layouts after the J-LIS ones (jpki.md §11), names and dates
issuance    one card's keys and certificates
revocation  revocation reasons and their X.509 codes
crl, ocsp   what relying parties ask: CRLs and RFC 6960 answers
validation  may this user-authentication certificate authenticate someone now, and who
"""
