"""Plugin commands on a real (offline) Electrum 4.8 daemon with the plugin zip: every bad input
from the user gets a clear, typed error and changes nothing. Through JSON-RPC and the CLI."""
from __future__ import annotations

import json

import pytest

from tests.harness.electrum import ElectrumCommandError, ElectrumDaemon, build_plugin_zip
from tests.harness.wallets import DaemonRPC, ElectrumRPCError

pytestmark = [pytest.mark.electrum, pytest.mark.slow]
P = "musig2_plugin_"
K2 = "02f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9"
K3 = "03dff1d77f2a671c5f36183726db2341be58feae1da2deced843240f7b502ba659"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cmds")
    d = ElectrumDaemon(tmp / "e", plugin_zip=build_plugin_zip(tmp / "dist"), name="cmds")
    d.start()
    d.create_wallet("alice", password="secret")
    yield d
    d.stop()


@pytest.fixture(scope="module")
def rpc(daemon):
    r = DaemonRPC(daemon.datadir)
    alice = str(daemon.wallet_path("alice"))

    def call(method, wallet=alice, **kw):
        if wallet is not None:
            kw["wallet_path"] = wallet
        return r.call(P + method, **kw)
    return call


def _refused(rpc, method, match, **kw):
    with pytest.raises(ElectrumRPCError) as info:
        rpc(method, **kw)
    assert match in info.value.message, info.value.message
    return info.value.message


def test_status_says_whether_the_participant_key_is_known(daemon, rpc):
    """Encrypted wallet, key never derived: the status says it is locked and what to run (and
    derives nothing); an unencrypted wallet's status derives it on the spot, no password."""
    st = rpc("status")
    assert st["participant_key"] is None
    assert st["participant_key_state"].startswith("locked:")
    assert "musig2_plugin_participant_key" in st["participant_key_state"]
    assert "--password" in st["participant_key_state"]
    assert rpc("status")["participant_key_state"] == st["participant_key_state"]   # still locked
    daemon.create_wallet("plain")
    plain = str(daemon.wallet_path("plain"))
    st2 = rpc("status", wallet=plain)
    assert st2["participant_key_state"] == "known" and len(st2["participant_key"]) == 66
    assert rpc("participant_key", wallet=plain)["pubkey"] == st2["participant_key"]
    assert "participant_key_error" not in st2


def test_participant_key_needs_password(rpc):
    _refused(rpc, "participant_key", "Password required")
    _refused(rpc, "participant_key", "Incorrect password", password="nope")   # Electrum checks first
    key = rpc("participant_key", password="secret")
    assert len(key["pubkey"]) == 66 and key["path"] == "327h/0h"
    st = rpc("status")
    assert st["participant_key"] == key["pubkey"] and st["participant_key_state"] == "known"


def test_create_output_refusals_change_nothing(rpc):
    before = rpc("list_outputs")
    cases = [({"keys": "zz"}, "BadArgument"),
             ({"keys": K2[:-2]}, "BadArgument"),
             ({"keys": "02" + "00" * 31 + "05"}, "InvalidParticipants"),      # not on the curve
             ({}, "BadArgument"),                                                # neither
             ({"keys": K2, "descriptor": "tr(x)"}, "BadArgument"),                # both
             ({"descriptor": f"tr(musig({K2},{K3}))"}, "InvalidParticipants"),    # not ours
             ({"descriptor": f"tr(musig({K2},{K3}))#qqqqqqqq"}, "DescriptorError"),
             ({"descriptor": f"wsh(musig({K2},{K3}))"}, "DescriptorError"),
             ({"keys": "[]"}, "InvalidParticipants")]                             # only our key
    for kw, match in cases:
        _refused(rpc, "create_output", match, password="secret", **kw)
    assert rpc("list_outputs") == before


def test_create_and_list_output_offline(rpc):
    made = rpc("create_output", keys=json.dumps([K2, K3]), label="team", password="secret")
    again = rpc("create_output", keys=f"{K3},{K2}", password="secret")      # same set, any order
    assert again["descriptor"] == made["descriptor"] and again["address"] == made["address"]
    listed = rpc("list_outputs")
    assert [o["address"] for o in listed] == [made["address"]]
    assert listed[0]["label"] == "team" and listed[0]["balance"] is None    # offline: no server
    _refused(rpc, "request_spend", "Offline", outputs=f"[[\"{made['address']}\", 1000]]",
             fee=200, password="secret")
    # a fee that is not a number: a typed refusal, not Electrum's "internal error"
    msg = _refused(rpc, "request_spend", "BadArgument", outputs=f"[[\"{made['address']}\", 1000]]",
                   fee="lots", password="secret")
    assert "fee must be whole satoshis" in msg


def test_psbt_commands_refuse_garbage(rpc):
    for bad in ("", "cHNidP8=", "not a psbt", "70736274ff00"):
        _refused(rpc, "psbt_review", "MalformedPsbt", psbt=bad, password="secret")
        _refused(rpc, "psbt_finalize", "MalformedPsbt", psbt=bad, wallet=None)
    _refused(rpc, "psbt_combine", "BadArgument", psbts="[]", wallet=None)
    _refused(rpc, "broadcast", "MalformedPsbt", tx="00")


def test_network_commands_need_the_node(rpc):
    for method, kw in (("find_signers", {}), ("list_requests", {}), ("withdraw", {}),
                       ("approve", {"request_id": "00" * 32}),
                       ("session_status", {"request_id": "00" * 32}), ("advertise", {})):
        _refused(rpc, method, "not running", **kw)


def test_node_start_refusals_and_advertise(rpc):
    _refused(rpc, "node_start", "not host:port", bootstrap="nonsense", password="secret")
    _refused(rpc, "node_start", "Incorrect password", password="wrong")
    st = rpc("node_start", dht=False, password="secret")
    assert st["running"] and st["endpoint"][0] == "127.0.0.1"
    _refused(rpc, "advertise", "BadArgument", tx_types="teleport")
    # Over-long nicknames: the limit in words (not the record layer's InvalidField), nothing
    # published; ASCII over the limit, and 20 characters that are 40 UTF-8 bytes.
    for nick, size in (("n" * 33, 33), ("\u00e9" * 20, 40)):
        msg = _refused(rpc, "advertise", f"BadArgument: the nickname is {size} bytes", nickname=nick)
        assert "at most 32" in msg
    assert rpc("status")["node"]["advertising"] is False
    _refused(rpc, "approve", "unknown signing request", request_id="ab" * 32)
    _refused(rpc, "approve", "must be hex", request_id="xyz")
    assert rpc("status")["node"]["running"] is True
    assert rpc("node_stop") == {"stopped": True}
    assert rpc("node_stop") == {"stopped": False}


def test_cli_shows_the_same_clear_error(daemon):
    with pytest.raises(ElectrumCommandError) as info:
        daemon.cli(P + "create_output", "--keys", "zz", "--password", "secret",
                   "-w", str(daemon.wallet_path("alice")))
    assert "BadArgument" in (info.value.stdout + info.value.stderr)
    # and the happy path on the command line: JSON out
    w = str(daemon.wallet_path("alice"))
    key = daemon.cli(P + "participant_key", "--password", "secret", "-w", w)
    made = daemon.cli(P + "create_output", "--keys", K2, "--password", "secret", "-w", w)
    assert made["participants"] == sorted([key["pubkey"], K2], key=bytes.fromhex)
    assert made["address"].startswith("bcrt1p")


def test_watch_only_wallet_refused_clearly(daemon, rpc):
    xpub = daemon.cli("getmpk", "-w", str(daemon.wallet_path("alice")))
    daemon.restore_wallet("watch", xpub)
    watch = str(daemon.wallet_path("watch"))
    _refused(rpc, "participant_key", "UnsupportedWallet", wallet=watch)
    _refused(rpc, "node_start", "UnsupportedWallet", wallet=watch)
    st = rpc("status", wallet=watch)
    assert st["participant_key"] is None and "watch-only" in st["participant_key_error"]
    assert st["participant_key_state"].startswith("unsupported: UnsupportedWallet")


def test_outputs_and_key_survive_a_daemon_restart(daemon, rpc):
    before = rpc("list_outputs")
    key = rpc("status")["participant_key"]
    assert before and key
    daemon.stop()
    daemon.start()
    daemon.load_wallet("alice", password="secret")
    after = rpc("list_outputs")
    assert [o["descriptor"] for o in after] == [o["descriptor"] for o in before]
    assert rpc("status")["participant_key"] == key     # cached public key: no password needed


def test_psbt_file_flow_with_an_outside_signer_and_combine(rpc):
    """Alice's daemon and a signer outside it (this test process, its own key) co-sign a PSBT
    file: nonces added separately and merged with psbt_combine, partial signatures likewise,
    finalized by the daemon; the signature verifies under the output key with Electrum's sighash."""
    import hashlib
    import os as _os
    from coincurve import PrivateKey
    from musig2_plugin import crypto
    from musig2_plugin.wallet_bridge import (MusigCoin, MusigOutput, PsbtSigner, build_spend,
                                             keypath_sighash, parse_psbt, psbt_base64)
    me = bytes.fromhex(rpc("participant_key", password="secret")["pubkey"])
    secret = _os.urandom(32)
    other = PrivateKey(secret).public_key.format()
    out = MusigOutput.from_pubkeys([me, other])
    coin = MusigCoin(hashlib.sha256(b"file flow").hexdigest(), 0, 80_000, out)
    payee = MusigOutput.from_pubkeys([other, PrivateKey(_os.urandom(32)).public_key.format()])
    tx = build_spend([coin], [(payee.address(), 79_000)], fee_sats=1_000)
    base = psbt_base64(tx)
    msg = keypath_sighash(tx, 0)

    theirs = PsbtSigner(other, lambda: secret)
    t = parse_psbt(base)
    theirs.round1(t)
    with_their_nonce = psbt_base64(t)
    with_my_nonce = rpc("psbt_nonce", psbt=base, password="secret")["psbt"]
    both = rpc("psbt_combine", psbts=json.dumps([with_my_nonce, with_their_nonce]), wallet=None)["psbt"]
    # a PSBT that disagrees on a MuSig2 field (another nonce for the same key) is refused
    t2 = parse_psbt(base)
    PsbtSigner(other, lambda: secret).round1(t2)
    _refused(rpc, "psbt_combine", "disagree", psbts=json.dumps([with_their_nonce, psbt_base64(t2)]),
             wallet=None)

    mine_signed = rpc("psbt_sign", psbt=both, password="secret")["psbt"]
    t = parse_psbt(both)
    theirs.round2(t)
    final = rpc("psbt_finalize", wallet=None,
                psbt=rpc("psbt_combine", wallet=None,
                         psbts=json.dumps([mine_signed, psbt_base64(t)]))["psbt"])
    from electrum.transaction import Transaction
    raw = Transaction(final["tx"])
    raw.deserialize()
    sig = raw.inputs()[0].witness[2:]
    assert crypto.schnorr_verify(out.xonly_output_key, msg, sig)
    # round 2 again: the daemon's secret nonce for this PSBT was consumed
    _refused(rpc, "psbt_sign", "no round-1 nonce", psbt=both, password="secret")
