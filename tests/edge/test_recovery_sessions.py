"""Key-path spends of a recovery output through the peer sessions: three real Electrum wallets,
three coordinator nodes (aiorpcx on 127.0.0.1, DHT off), the request carrying the script tree's
merkle root so every session tweaks with it. A request whose merkle root is not the input's tree
is refused by the co-signers before anything is signed."""
from __future__ import annotations

import asyncio
import hashlib

import pytest

from musig2_plugin import crypto
from musig2_plugin.app.cosign import PENDING, REFUSED, SIGNED, WalletCosigner, encode_app_data
from musig2_plugin.coordinator import request_key
from musig2_plugin.wallet_bridge import (MusigCoin, MusigOutput, RecoveryPolicy, build_spend,
                                         participant_secret, sighashes)


@pytest.fixture(scope="module")
def trio_keys(module_wallets):
    ws = [module_wallets.new(password="pw")[0] for _ in range(3)]
    return ws, [participant_secret(w, "pw") for w in ws]


async def _until(pred, timeout=20.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


@pytest.fixture
async def cosigners(trio_keys):
    ws, secrets = trio_keys
    cs = [WalletCosigner(w, s, auto_broadcast=False) for w, s in zip(ws, secrets)]
    eps = [await c.start(dht=False) for c in cs]
    for c in cs:
        for other, ep in zip(cs, eps):
            if other is not c:
                c.node.add_peer(other.pubkey, ep)
    yield cs
    for c in cs:
        await c.stop()


def _recovery_spend(cs):
    keys = crypto.key_sort([c.pubkey for c in cs])
    out = MusigOutput.from_pubkeys(keys, recovery=RecoveryPolicy.funder_alone(cs[0].pubkey, keys, 144))
    coin = MusigCoin(hashlib.sha256(b"tree coin").hexdigest(), 0, 80_000, out)
    return out, build_spend([coin], [(cs[0].wallet.get_receiving_address(), 79_000)],
                            fee_sats=1_000)


async def test_key_path_spend_of_a_recovery_output_over_sessions(cosigners):
    alice, bob, carol = cosigners
    out, tx = _recovery_spend(cosigners)
    msg = sighashes(tx)[0]
    state = await alice.request_spend(tx)
    await _until(lambda: all(state.key in c.requests for c in (bob, carol)))
    for c in (bob, carol):
        st = c.requests[state.key]
        assert st.status == PENDING, st.error
        assert "funder" in st.review.to_json()["inputs"][0]["recovery"]   # shown in the review
    await bob.approve(state.key)
    await carol.approve(state.key)
    await _until(lambda: state.status == SIGNED, timeout=30)
    sig = state.signatures[0]
    assert crypto.schnorr_verify(out.xonly_output_key, msg, sig)
    plain = MusigOutput.from_pubkeys([c.pubkey for c in cosigners])
    assert not crypto.schnorr_verify(plain.xonly_output_key, msg, sig)


@pytest.mark.parametrize("root", [None, b"\x07" * 32])
async def test_request_whose_merkle_root_is_not_the_inputs_tree_is_refused(cosigners, root):
    alice, bob, carol = cosigners
    out, tx = _recovery_spend(cosigners)
    record = await alice.node.announce_signing_request(
        [c.pubkey for c in cosigners], [sighashes(tx)[0]], app_data=encode_app_data(tx, [0]),
        merkle_root=root)
    key = request_key(record)
    await _until(lambda: key in bob.requests and key in carol.requests)
    for c in (bob, carol):
        st = c.requests[key]
        assert st.status == REFUSED and "merkle root" in st.error, st.error
