"""Who the client is behind proxies (pure): the proxies the operator trusts, and the client's address.

``X-Forwarded-For`` is a list each proxy appends its peer to, but its left part is whatever the client
wrote. Only the proxies the operator names (``NUGAT_TRUSTED_PROXIES``, addresses or CIDR networks) are
believed, and the client is the rightmost address that is not one of them, as werkzeug's ProxyFix and
uvicorn's ``forwarded_allow_ips`` do: a client can prepend any address it likes, never replace the one
its first trusted proxy saw. Addresses are normalized (``::ffff:10.0.0.1`` is ``10.0.0.1``), so one client
is one throttle bucket and one audit address whichever way it was spelled.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_TRUSTED_PROXIES = ("127.0.0.0/8", "::1")
MAX_FORWARDED_HOPS = 32  # a longer X-Forwarded-For is cut to its rightmost entries


class InvalidProxySetting(ValueError):
    """A NUGAT_TRUSTED_PROXIES entry that is neither an address nor a network."""


def parse_networks(spec: Iterable[str]) -> tuple[IPNetwork, ...]:
    """The networks of ``spec`` (``10.0.0.1``, ``10.0.0.0/8``, ``::1``); raise naming the wrong entry."""
    networks = []
    for entry in spec:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise InvalidProxySetting(
                f"NUGAT_TRUSTED_PROXIES: {entry.strip()!r} is not an IP address or network (such as "
                "127.0.0.1 or 10.0.0.0/8)"
            ) from None
    return tuple(networks)


def split_setting(text: str) -> tuple[str, ...]:
    """The entries of a comma- or space-separated setting."""
    return tuple(entry for entry in text.replace(",", " ").split() if entry)


def normalized(text: str) -> IPAddress | None:
    """The address ``text`` names (an IPv4-mapped IPv6 address as IPv4), or None if it names none."""
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:443
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # 203.0.113.7:443
        text = text.split(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    def __init__(self, spec: Iterable[str] = DEFAULT_TRUSTED_PROXIES) -> None:
        self.networks = parse_networks(spec)
        self.trusts = functools.lru_cache(maxsize=1024)(self._trusts)

    def _trusts(self, peer: str) -> bool:
        """Whether ``peer`` (the address of the direct connection) is a proxy the operator named."""
        address = normalized(peer)
        return address is not None and self._contains(address)

    def _contains(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)

    def client(self, peer: str, forwarded_for: Iterable[str]) -> str:
        """The client's address: ``peer`` unless it is a trusted proxy; then the rightmost address of the
        ``X-Forwarded-For`` values (in the order received) that is not a trusted proxy.

        Past an entry that is not an address, nothing is believed: the hop that reported it is the client.
        When every hop is trusted, the leftmost is the client (one on the proxies' own network).
        """
        own = normalized(peer)
        if own is None or not self._contains(own):
            return str(own) if own is not None else peer
        hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
        client = own
        for hop in reversed(hops[-MAX_FORWARDED_HOPS:]):
            address = normalized(hop)
            if address is None:
                return str(client)
            client = address
            if not self._contains(address):
                return str(address)
        return str(client)
