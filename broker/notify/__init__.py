"""Adapters of ``broker.core.notify``: how the broker tells citizens by e-mail (``smtp.SmtpMailer``)."""
