"""DHT client mode: a node that cannot receive datagrams (behind a NAT) still looks up and
stores records, but never lands in other nodes' routing tables. Real kademlia nodes on
127.0.0.1; the NAT case itself runs in tests/netns/test_reachability.py."""
from __future__ import annotations

from musig2_plugin.dht import DhtNode
from musig2_plugin.dht.protocol import CLIENT_ID_MARK, client_id
from musig2_plugin.foundation.chain import REGTEST
from musig2_plugin.records import signer_topic

from dht_netutil import FAST, make_ad



def topic(ad):
    """The (sharded) signer topic an advertisement is stored under."""
    return signer_topic("spend", ad.owner, REGTEST)


async def test_client_mode_node_stores_and_looks_up_but_is_not_a_contact() -> None:
    a, b, client, normal = (DhtNode(FAST, chain=REGTEST) for _ in range(4))
    try:
        await a.start()
        await b.start(bootstrap=[a.address])
        await client.start()
        client.set_client_mode(True)
        assert client.client_mode
        await client.bootstrap([a.address, b.address])
        await normal.start(bootstrap=[a.address, b.address])
        # the client stores a record and finds one stored by others
        assert await client.publish(make_ad(1)) >= 1
        assert await b.publish(make_ad(2)) >= 1
        for ad in (make_ad(1), make_ad(2)):
            assert ad.owner in {r.owner for r in await client.lookup(topic(ad))}
        assert make_ad(1).owner in {r.owner for r in await normal.lookup(topic(make_ad(1)))}
        # ... yet nobody holds its address; the normal node is everyone's contact
        for node in (a, b, normal):
            assert client.address not in node.contacts()
        assert normal.address in a.contacts() and normal.address in b.contacts()
        assert a.stats["client_requests"] > 0 or b.stats["client_requests"] > 0
        # the client itself knows the public nodes (they answered it)
        assert a.address in client.contacts()
        # back to normal mode: its next request makes it a contact
        client.set_client_mode(False)
        await client.bootstrap([a.address])
        assert client.address in a.contacts()
    finally:
        for n in (a, b, client, normal):
            await n.stop()


def test_client_id_form() -> None:
    nid = bytes(range(20))
    assert client_id(bytes([CLIENT_ID_MARK]) + nid)
    for bad in (nid, bytes([0]) + nid, bytes([CLIENT_ID_MARK]) + nid[:-1], "x" * 21, None):
        assert not client_id(bad)
