"""``N_``: marks a person-facing sentence of the core for translation without translating it here.

The core imports no web framework (DESIGN: layout), so it cannot call Flask-Babel's ``gettext``. A sentence a
citizen may read (an error's ``default_message``, a refusal in ``core.linking``) is written ``N_("...")``:
``pybabel extract -k N_`` (``make translations``, babel.cfg) puts it in ``broker/translations/messages.pot``,
and the web layer translates it when it renders it (``gettext(error.message)``). The marker itself returns its
argument unchanged, so the English text stays the message id (GNU gettext manual §4.7, "Special Cases of
Translatable Strings": marking a string for extraction where it cannot be translated yet).
"""

from __future__ import annotations


def N_(message: str) -> str:
    """``message`` unchanged; only ``pybabel extract -k N_`` reads the call."""
    return message
