"""The broker's OpenID Shared Signals Framework 1.0 transmitter (issue 18): stream management for apps and the
``core.security_events.SecurityEvents`` the journeys call. Flask lives in ``broker.web.ssf``."""

from broker.downstream.ssf.config import TransmitterSettings
from broker.downstream.ssf.transmitter import SsfTransmitter

__all__ = ["SsfTransmitter", "TransmitterSettings"]
