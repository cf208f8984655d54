"""Certificate documents: what each certificate says (content), how it looks (layouts),
and how it is rendered, signed and verified."""
