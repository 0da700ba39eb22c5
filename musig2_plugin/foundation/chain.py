"""Which Bitcoin chain a node, a record or a message belongs to.

Records, DHT topics and session envelopes all carry a short *chain id* inside
their signed bytes, so a regtest or testnet advertisement can never be shown
to a mainnet wallet and nothing signed for one chain can be used on another.
The id is a tagged hash of the chain's genesis block hash and its network
name: the genesis hash separates the real chains, and the name separates
networks that share a genesis block (every signet, including Electrum's
mutinynet, starts from the same genesis block).

This module never imports Electrum: the Electrum edge passes the network's
name and genesis hash (``electrum.constants.net``) to ``chain_for_network``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from . import constants as C
from .errors import Musig2Error


def _tagged_hash(tag: str, data: bytes) -> bytes:
    """BIP-340's tagged hash, written out here: the foundation layer imports nothing above it."""
    t = hashlib.sha256(tag.encode()).digest()
    return hashlib.sha256(t + t + data).digest()


class UnknownChain(Musig2Error, ValueError):
    """A chain name (or name/genesis pair) this code does not know."""


@dataclass(frozen=True)
class Chain:
    """A Bitcoin network: its name, its genesis block hash, and the id derived from both."""

    name: str
    genesis_hex: str        # as block explorers and Electrum print it (big-endian)
    id: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or not self.name.isascii() \
                or len(self.name) > 32:
            raise UnknownChain("a chain name is 1..32 ASCII characters")
        try:
            genesis = bytes.fromhex(self.genesis_hex)
        except (TypeError, ValueError):
            raise UnknownChain("a genesis hash is 64 hex digits") from None
        if len(genesis) != 32:
            raise UnknownChain("a genesis hash is 64 hex digits")
        object.__setattr__(self, "id", _tagged_hash(
            C.CHAIN_ID_TAG, genesis[::-1] + self.name.encode("ascii"))[:C.CHAIN_ID_LEN])

    @property
    def allows_local_endpoints(self) -> bool:
        """Whether loopback/private/link-local addresses may be advertised (regtest only:
        a test chain whose nodes all sit on one machine or one private network)."""
        return self.name == "regtest"

    @property
    def default_port(self) -> int:
        """The documented default listen port of this chain's nodes (constants.DEFAULT_PORTS)."""
        return C.DEFAULT_PORTS[self.name]

    @property
    def default_bootstrap(self) -> tuple[tuple[str, int], ...]:
        """The shipped public bootstrap nodes of this chain (constants.DEFAULT_BOOTSTRAP)."""
        out = []
        for entry in C.DEFAULT_BOOTSTRAP.get(self.name, ()):
            host, _, port = entry.rpartition(":")
            out.append((host.strip("[]"), int(port)))
        return tuple(out)

    def __str__(self) -> str:
        return self.name


MAINNET = Chain("mainnet", "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f")
TESTNET = Chain("testnet", "000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943")
TESTNET4 = Chain("testnet4", "00000000da84f2bafbbc53dee25a72ae507ff4914b867c565be350b0da8bf043")
SIGNET = Chain("signet", "00000008819873e925422c1ff0f99f7cc9bbb232af63a077a480a3633bee1ef6")
REGTEST = Chain("regtest", "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206")

#: The chains the plugin supports, by Electrum's network name.
KNOWN_CHAINS: dict[str, Chain] = {c.name: c for c in (MAINNET, TESTNET, TESTNET4, SIGNET, REGTEST)}


def chain_named(name: str) -> Chain:
    """The known chain called ``name`` (mainnet, testnet, testnet4, signet, regtest)."""
    chain = KNOWN_CHAINS.get(name) if isinstance(name, str) else None
    if chain is None:
        raise UnknownChain(f"unknown chain {name!r}; known: {', '.join(KNOWN_CHAINS)}")
    return chain


def chain_for_network(name: str, genesis_hex: str) -> Chain:
    """The chain of Electrum's network ``name`` whose genesis block is ``genesis_hex``.

    A known name with another genesis hash is refused (a misconfigured or forged
    network must not borrow a real chain's id); other names are refused too, so
    the plugin runs only on the chains it was tested on.
    """
    chain = chain_named(name)
    if chain.genesis_hex != str(genesis_hex).lower():
        raise UnknownChain(f"network {name!r} has genesis {genesis_hex}, expected {chain.genesis_hex}")
    return chain


def chain_id_of(chain: "Chain | bytes") -> bytes:
    """The id of ``chain`` (a Chain, or already an id)."""
    if isinstance(chain, Chain):
        return chain.id
    if isinstance(chain, (bytes, bytearray)) and len(chain) == C.CHAIN_ID_LEN:
        return bytes(chain)
    raise UnknownChain(f"a chain is a Chain or a {C.CHAIN_ID_LEN}-byte chain id")


def chain_label(chain: "Chain | bytes") -> str:
    """A chain's name, or its id in hex when it is not one we know (for error messages)."""
    if isinstance(chain, Chain):
        return chain.name
    known = chain_by_id(bytes(chain))
    return known.name if known is not None else bytes(chain).hex()


def chain_by_id(chain_id: bytes) -> Chain | None:
    """The known chain with this id, or None (for messages that name the foreign chain)."""
    for chain in KNOWN_CHAINS.values():
        if chain.id == chain_id:
            return chain
    return None
