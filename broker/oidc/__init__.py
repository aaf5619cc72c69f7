"""OpenID Connect pieces shared by the registry (client files), storage-backed dynamic registration and the
downstream OpenID provider: the registered client and the registration policy."""
