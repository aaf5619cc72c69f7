"""The broker's own keys: ``keyring`` loads, checks and generates the PEM files of ``certs/`` (SAML signing and
encryption, certificates for metadata), ``jwt`` signs and checks the broker's JWTs and publishes the JWKS, and
``rotation`` stages, switches and retires signing keys on disk. A shared helper, used by adapters, ``web`` and
the CLI alike: it imports only the standard library, third-party libraries, ``broker.core`` and its own modules,
never an adapter, the journeys, ``web`` or composition. Nothing is re-exported here; import the module that
defines a name."""
