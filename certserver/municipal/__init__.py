"""A municipality's certificate server (証明発行サーバ): its residents, rules, numbering and
rendering, answering the J-LIS centre over the LGWAN link (docs/lgwan.md)."""
