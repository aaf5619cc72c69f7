"""The pysaml2 edge shared by the SAML adapters: attribute converters from the claim table, the
in-process XML signature backend, hardened XML intake. Nothing outside the SAML adapters and the
registry imports this package; nothing in it leaks a pysaml2 object to the core."""
