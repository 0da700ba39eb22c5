"""The co-signing service end to end in one process: three real Electrum wallets, three real
coordinator nodes (aiorpcx sessions on 127.0.0.1, DHT off: peers added by endpoint), a two-input
spend request, approvals, both rounds, finalized transaction. And the refusals: a request whose
messages differ from its transaction, a PSBT without an input's amount and script."""
from __future__ import annotations

import asyncio
import hashlib

import pytest

from musig2_plugin import crypto
from musig2_plugin.app.cosign import (APPROVED, PENDING, REFUSED, SIGNED, WalletCosigner,
                                  encode_app_data)
from musig2_plugin.wallet_bridge import (BridgeError, MusigCoin, MusigOutput, build_spend,
                                         derive_participant_key, keypath_sighash, parse_psbt,
                                         participant_secret, psbt_base64, sighashes)


def _txid(n: int) -> str:
    return hashlib.sha256(b"coin %d" % n).hexdigest()


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


def _spend(cs, values=(70_000, 30_000)):
    out = MusigOutput.from_pubkeys([c.pubkey for c in cs])
    coins = [MusigCoin(_txid(i), i, v, out) for i, v in enumerate(values)]
    dest = cs[0].wallet.get_receiving_address()
    return out, build_spend(coins, [(dest, sum(values) - 1_500)], fee_sats=1_500)


async def test_two_input_request_approved_signed_and_finalized(cosigners):
    alice, bob, carol = cosigners
    out, tx = _spend(cosigners)
    msgs = sighashes(tx)
    state = await alice.request_spend(tx)
    assert state.status == APPROVED and state.inputs == [0, 1]
    await _until(lambda: all(state.key in c.requests for c in (bob, carol)))
    for c in (bob, carol):
        st = c.requests[state.key]
        assert st.status == PENDING, st.error
        assert st.review.fee_sats == 1_500 and sorted(st.review.messages) == [0, 1]
        assert [o.value_sats for o in st.review.outputs] == [98_500]
    # nothing is signed before approval
    await asyncio.sleep(0.3)
    assert state.status == APPROVED and not state.signatures
    await bob.approve(state.key)
    await carol.approve(state.key)
    await _until(lambda: state.status == SIGNED, timeout=30)
    assert state.final_tx and state.error is None
    from electrum.transaction import Transaction
    final = Transaction(state.final_tx)
    final.deserialize()
    assert final.txid() == state.txid
    assert [txin.witness[2:] for txin in final.inputs()] == [state.signatures[0], state.signatures[1]]
    for i in (0, 1):
        assert crypto.schnorr_verify(out.xonly_output_key, msgs[i], state.signatures[i])
    assert {"joined", "ready", "round1", "round2", "signed"} <= set(state.phases)
    with pytest.raises(BridgeError, match="already"):
        await bob.approve(state.key)
    # Broadcast failure path (these wallets are offline): two overlapping callers share one
    # attempt and both get the typed error; nothing is marked sent; a later call tries again.
    got = await asyncio.gather(alice.broadcast(state), alice.broadcast(state),
                               return_exceptions=True)
    assert [type(e).__name__ for e in got] == ["BroadcastError", "BroadcastError"]
    assert state.broadcasts == 1 and state.status == SIGNED and state.broadcast_txid is None
    assert "offline" in state.error
    with pytest.raises(BridgeError, match="offline"):
        await alice.broadcast(state)
    assert state.broadcasts == 2 and state.to_json()["broadcasts"] == 2


async def test_request_with_wrong_message_is_refused(cosigners):
    alice, bob, carol = cosigners
    out, tx = _spend(cosigners, values=(50_000,))
    good = keypath_sighash(tx, 0)
    wrong = bytes([good[0] ^ 1]) + good[1:]
    record = await alice.node.announce_signing_request(
        [c.pubkey for c in cosigners], [wrong], app_data=encode_app_data(tx, [0]))
    from musig2_plugin.coordinator import request_key
    key = request_key(record)
    await _until(lambda: key in bob.requests and key in carol.requests)
    for c in (bob, carol):
        st = c.requests[key]
        assert st.status == REFUSED and st.error.startswith("SighashMismatch"), st.error
        with pytest.raises(BridgeError, match="refused"):
            await c.approve(key)


async def test_request_without_amount_and_script_is_refused(cosigners):
    alice, bob, carol = cosigners
    out, tx = _spend(cosigners)
    msgs = sighashes(tx)
    stripped = parse_psbt(psbt_base64(tx))
    stripped.inputs()[1]._witness_utxo = None
    stripped = parse_psbt(psbt_base64(stripped))
    record = await alice.node.announce_signing_request(
        [c.pubkey for c in cosigners], [msgs[0]], app_data=encode_app_data(stripped, [0]))
    from musig2_plugin.coordinator import request_key
    key = request_key(record)
    await _until(lambda: key in bob.requests)
    st = bob.requests[key]
    assert st.status == REFUSED and st.error.startswith("MissingInputInfo"), st.error


async def test_request_for_other_keys_than_the_inputs_is_refused(cosigners, module_wallets):
    alice, bob, carol = cosigners
    out, tx = _spend(cosigners, values=(50_000,))
    # announce to alice+bob only, for an input whose output needs carol too
    record = await alice.node.announce_signing_request(
        [alice.pubkey, bob.pubkey], [keypath_sighash(tx, 0)], app_data=encode_app_data(tx, [0]))
    from musig2_plugin.coordinator import request_key
    key = request_key(record)
    await _until(lambda: key in bob.requests)
    assert bob.requests[key].status == REFUSED
    assert bob.requests[key].error.startswith("ParticipantMismatch")


async def test_tracked_requests_are_bounded(cosigners, monkeypatch):
    """Anyone may address requests to our key: the wallet keeps a bounded number, evicting
    refused ones first."""
    import musig2_plugin.app.cosign as cosign_mod
    monkeypatch.setattr(cosign_mod, "MAX_TRACKED_REQUESTS", 3)
    alice, bob, carol = cosigners
    out, tx = _spend(cosigners, values=(50_000,))
    good = keypath_sighash(tx, 0)
    from musig2_plugin.coordinator import request_key
    keys = []
    for n in range(5):
        wrong = bytes([n + 1]) + good[1:]           # each refused (wrong message)
        record = await alice.node.announce_signing_request(
            [c.pubkey for c in cosigners], [wrong], app_data=encode_app_data(tx, [0]))
        keys.append(request_key(record))
        await _until(lambda: keys[-1] in bob.requests)
    assert len(bob.requests) <= 3
    assert keys[-1] in bob.requests and keys[0] not in bob.requests


async def test_reject_and_cancel(cosigners):
    alice, bob, carol = cosigners
    out, tx = _spend(cosigners, values=(40_000,))
    state = await alice.request_spend(tx)
    await _until(lambda: state.key in bob.requests and state.key in carol.requests)
    # bob rejects: nothing joined, approving later is refused
    assert bob.reject(state.key).status == REFUSED
    with pytest.raises(BridgeError, match="refused"):
        await bob.approve(state.key)
    # carol approves, then cancels before the session can complete (bob never joins):
    # her sessions are dropped and nothing gets signed
    await carol.approve(state.key)
    got = carol.cancel(state.key)
    assert got.status == "failed" and got.error == "cancelled by the user"
    assert all(carol.node.sessions.get(s) is None or carol.node.sessions.get(s).closed
               for s in got.session_ids)
    await asyncio.sleep(0.3)
    assert not state.signatures and state.status == APPROVED


async def test_approved_request_is_rejoined_after_a_restart(cosigners, trio_keys):
    """bob approves, then restarts (new node, same key, nonces lost) before the session ends;
    his stored approval makes the new node rejoin; carol approves; the spend gets signed."""
    alice, bob, carol = cosigners
    ws, secrets = trio_keys
    out, tx = _spend(cosigners, values=(60_000,))
    state = await alice.request_spend(tx)
    await _until(lambda: state.key in bob.requests and state.key in carol.requests)
    approvals: dict = {}
    bob.approvals = approvals
    await bob.approve(state.key)
    assert state.key.hex() in approvals
    await bob.stop()                                    # "restart": memory and nonces gone
    bob2 = WalletCosigner(ws[1], secrets[1], auto_broadcast=False, approvals=approvals)
    ep = await bob2.start(dht=False)
    try:
        for c in (alice, carol):
            c.node.add_peer(bob2.pubkey, ep)
            bob2.node.add_peer(c.pubkey, c.node.endpoint)
        bob2.node.known_request(state.record)          # the request found again (DHT, or a push)
        await _until(lambda: state.key in bob2.requests
                     and bob2.requests[state.key].status in (APPROVED, SIGNED))
        await carol.approve(state.key)
        await _until(lambda: state.status == SIGNED, timeout=40)
        assert state.error is None and sorted(state.signatures) == [0]
    finally:
        await bob2.stop()


async def test_creator_review_computed_once_and_approval_bound_to_the_reviewed_payload(cosigners):
    """The creator announces with the sighashes and review it already computed (the same
    object, not a second computation); a co-signer's approval callback accepts only the exact
    record and payload it reviewed, without parsing the PSBT again."""
    import dataclasses

    from musig2_plugin.app import prepare_own_spend
    alice, bob, _carol = cosigners
    _out, tx = _spend(cosigners)
    own = prepare_own_spend(tx, alice.pubkey)
    assert own.inputs == (0, 1) and own.sighashes == sighashes(tx)
    state = await alice.request_spend(tx, prepared=own)
    assert state.review is own.review
    await _until(lambda: state.key in bob.requests)
    st = bob.requests[state.key]
    assert st.status == PENDING and st.payload is not None
    record, payload = st.record, st.payload
    assert bob._approve(record, payload) is False                # not approved by the user yet
    st.approved = True
    assert bob._approve(record, payload) is True
    other = dataclasses.replace(payload, app_data=payload.app_data + b" ")
    assert bob._approve(record, other) is False                  # not what was reviewed
    assert "differs from the one reviewed" in st.error
    assert bob._approve(dataclasses.replace(record, metadata="x"), payload) is False
    st.approved = False


async def test_a_request_stored_in_the_dht_reaches_the_service_through_the_node_watcher(trio_keys):
    """Bob's node runs (DHT joined) but Alice cannot push to him (she does not know his
    endpoint): the request reaches Bob's service only through the coordinator's DHT watcher,
    which the service starts (it has no polling loop of its own any more)."""
    ws, secrets = trio_keys
    alice = WalletCosigner(ws[0], secrets[0], auto_broadcast=False)
    bob = WalletCosigner(ws[1], secrets[1], auto_broadcast=False)
    await alice.start(dht=True)
    try:
        await bob.start(dht=True, bootstrap=[alice.node.dht_address], poll_interval=0.3)
        assert bob._poller is not None and not bob._poller.done()
        assert bob._poller in bob.node._watchers        # the coordinator's watcher, not our own
        _out, tx = _spend([alice, bob])
        state = await alice.request_spend(tx)
        await _until(lambda: state.key in bob.requests, timeout=20)
        st = bob.requests[state.key]
        assert st.status == PENDING and st.review is not None, st.error
        assert bob.node.requests[state.key].via == "dht"
    finally:
        await bob.stop()
        await alice.stop()
    assert bob._poller is None
