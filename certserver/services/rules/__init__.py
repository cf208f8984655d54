"""The rules of the real service (service.md §2, §3), one concept per module:

- `terms`: the menu, order and refusal types of the contract;
- `violations`: the stable refusal codes with their Japanese and English messages;
- `calendar`: JST, business hours, the year-end closure, maintenance days, fiscal years;
- `fees`: the dated fee table;
- `eligibility`: who may be named on which certificate;
- `content_builder`: the certificate content from current registry data.

`certserver.services.ordering` composes them into `menu_for` and `prepare_order`.
"""
