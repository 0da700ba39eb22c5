"""The --recovery scenario of examples/wallet_demo.py: no hostage.

    scripts/run-demo --recovery [--wallets N] [--blocks B] [--timeout S]

Same chain and wallets as the main demo (regtest bitcoind + ElectrumX, N Electrum 4.8 daemons
with the plugin zip), then:

  output      alice creates tr(musig(all keys), and_v(v:pk(alice),older(B))): she funds it and
              may take it back alone after B blocks; the others import the descriptor with the
              policy alice announced (a different tree would be refused); the output key is
              recomputed here from BIP-341 and the node derives the same address from the tree
  funding     alice pays the output with an ordinary Electrum send; 1 block
  silent      the last co-signer's daemon is stopped: the cooperative (key) path needs every
              signer, so it is gone; alice's recovery is refused before block h+B, by the plugin
  recovery    B-1 more blocks; alice's wallet builds the script-path spend (leaf script, control
              block, her tapscript signature, nSequence B) and broadcasts it
  confirmed   a block; the node shows the spend confirmed with the 3-item recovery witness

Prints a ``RESULT {json}`` line; exit status as the main demo.
"""
from __future__ import annotations

import hashlib
import time
from typing import Any

P = "musig2_plugin_"


def _independent_output_key(keys_hex: list[str], leaf_script: bytes) -> str:
    """x(Q) of tr(musig(keys), leaf): BIP-327 aggregate, then BIP-341 with the leaf hash computed
    here (tagged hashes written out with hashlib), not by the plugin's recovery code."""
    from musig2_plugin.crypto import KeyAggContext, key_sort
    tag = hashlib.sha256(b"TapLeaf").digest()
    leaf_hash = hashlib.sha256(tag + tag + b"\xc0" + bytes([len(leaf_script)]) + leaf_script).digest()
    ctx = KeyAggContext.from_pubkeys(key_sort([bytes.fromhex(k) for k in keys_hex]))
    return ctx.with_taproot_tweak(leaf_hash).xonly().hex()


def _leaf_script(funder_hex: str, blocks: int) -> bytes:
    """and_v(v:pk(F),older(B)) assembled by hand: <x(F)> CHECKSIGVERIFY <B> CHECKSEQUENCEVERIFY."""
    if blocks <= 16:
        num = bytes([0x50 + blocks])
    else:
        body = blocks.to_bytes((blocks.bit_length() + 7) // 8, "little")
        body += b"\x00" if body[-1] & 0x80 else b""
        num = bytes([len(body)]) + body
    return b"\x20" + bytes.fromhex(funder_hex)[1:] + b"\xad" + num + b"\xb2"


def run_recovery(args, ph, parts: dict[str, Any], demo) -> dict[str, Any]:
    """``demo`` is the running wallet_demo module (its DemoFailure is the one main() catches)."""
    DemoFailure, all_alive, say, short, wait_for = (demo.DemoFailure, demo.all_alive, demo.say,
                                                    demo.short, demo.wait_for)
    phase_chain, phase_wallets = demo.phase_chain, demo.phase_wallets
    from tests.harness.wallets import ElectrumRPCError, wait_for_height
    n, blocks = args.wallets, args.blocks
    chain = phase_chain(ph, parts)
    wallets = phase_wallets(ph, chain, n)
    parts["wallets"] = wallets
    alice, others = wallets[0], wallets[1:]
    alive = all_alive(chain, wallets)

    ph.start(f"output: alice creates a MuSig2 output she alone may recover after {blocks} blocks")
    keys = [w.cmd(P + "participant_key")["pubkey"] for w in wallets]
    made = alice.cmd(P + "create_output", keys=",".join(keys[1:]), recovery=f"funder:{blocks}",
                     label="recovery demo")
    address, descriptor = made["address"], made["descriptor"]
    say(f"descriptor {descriptor}")
    say(f"address    {address}")
    say(f"backup     alice is asked to back up the descriptor: {short(made['backup'], 60)}")
    announced = f"funder:{keys[0]}:{blocks}"
    try:
        others[0].cmd(P + "create_output", descriptor=descriptor, recovery=f"funder:{keys[0]}:1")
        raise DemoFailure(f"{others[0].name} imported a tree that differs from its announced policy")
    except ElectrumRPCError as exc:
        say(f"{others[0].name:<7} asked to accept 'funder alone after 1 block' instead: refused "
            f"({exc.message.split(':')[0]})")
    for w in others:
        got = w.cmd(P + "create_output", descriptor=descriptor, recovery=announced)
        if got["address"] != address:
            raise DemoFailure(f"{w.name} derives {got['address']} from the same descriptor")
        say(f"{w.name:<7} imported it with the announced policy; sees: {got['recovery']['text']}")
    q = _independent_output_key(keys, _leaf_script(keys[0], blocks))
    spk = chain.node.call("validateaddress", address)["scriptPubKey"]
    if spk != "5120" + q:
        raise DemoFailure(f"the node decodes {address} to {spk}; BIP-341 gives output key {q}")
    tree_desc = f"tr({made['internal_key'][2:]},{made['recovery']['miniscript']})"
    info = chain.node.call("getdescriptorinfo", tree_desc)
    if chain.node.call("deriveaddresses", info["descriptor"])[0] != address:
        raise DemoFailure("the node derives another address from tr(x(P), leaf)")
    say(f"output key {short(q, 24)} recomputed here (BIP-341); the node derives the same address "
        f"from {short(info['descriptor'], 40)}")
    ph.end("output")

    ph.start("funding: alice pays the output with an ordinary Electrum send; 1 block")
    chain.fund(alice.new_address(), "1.0")
    chain.mine(1)
    wait_for_height(wallets, chain.node.height(), timeout=args.timeout)
    wait_for(lambda: float(alice.balance()["confirmed"]) == 1.0, "alice's 1 BTC", args.timeout, alive)
    raw = alice.cmd("payto", destination=address, amount="0.5", feerate=2, addtransaction=True)
    funding_txid = alice.call("broadcast", tx=raw)
    chain.mine(1)
    wait_for_height(wallets, chain.node.height(), timeout=args.timeout)
    coin = wait_for(lambda: next((c for o in alice.cmd(P + "list_outputs") if o["address"] == address
                                  for c in o["coins"] if c["height"] > 0), None),
                    "the output's coin to confirm", args.timeout, alive)
    say(f"alice: paid 0.5 BTC in {funding_txid}; coin {coin['outpoint']} at height {coin['height']}")
    ph.end("funding")

    ph.start(f"silent: {wallets[-1].name} stops answering; the key path needs all {n} signers")
    silent = wallets[-1]
    silent.stop()
    wallets = wallets[:-1]
    parts["wallets"] = wallets + [silent]
    alive = all_alive(chain, wallets)
    rinfo = alice.cmd(P + "recovery_info", output=address)
    opens = rinfo["coins"][0]["recoverable_from_height"]
    say(f"{silent.name}'s daemon is stopped; alice's recovery opens at block {opens} "
        f"(chain at {rinfo['chain_height']})")
    dest = alice.new_address()
    try:
        alice.cmd(P + "recover", output=address, destination=dest, feerate=2)
        raise DemoFailure("the plugin built a recovery before the timelock passed")
    except ElectrumRPCError as exc:
        say(f"alice: recover now -> refused: {exc.message}")
    ph.end("silent")

    ph.start(f"recovery: {blocks - 1} more block(s), then alice spends by the script path")
    chain.mine(blocks - 1)
    wait_for_height(wallets, chain.node.height(), timeout=args.timeout)
    t = time.monotonic()
    rec = alice.cmd(P + "recover", output=address, destination=dest, feerate=2)
    if not rec["complete"]:
        raise DemoFailure(f"alice's recovery is not complete: {rec}")
    say(f"alice: recovery {rec['txid']} built and signed in {time.monotonic() - t:.2f} s, "
        f"fee {rec['review']['fee_sats']} sat")
    if alice.cmd(P + "broadcast", tx=rec["tx"])["txid"] != rec["txid"]:
        raise DemoFailure("the broadcast txid differs")
    say("alice's wallet broadcast it; in the node's mempool: "
        f"{chain.node.in_mempool(rec['txid'])}")
    ph.end("recovery")

    ph.start("confirmed: a block is mined; the node shows the recovery")
    block_hash = chain.mine(1)[0]
    tx = chain.getrawtransaction(rec["txid"])
    if tx.get("blockhash") != block_hash:
        raise DemoFailure(f"{rec['txid']} is not in block {block_hash}")
    vin = tx["vin"][0]
    witness = vin["txinwitness"]
    if vin["sequence"] != blocks or len(witness) != 3:
        raise DemoFailure(f"unexpected recovery input: {vin}")
    say(f"node: {rec['txid']} confirmed in block {block_hash[:16]}…, nSequence {vin['sequence']}")
    say(f"witness: signature {short(witness[0], 32)}")
    say(f"         leaf script {witness[1]}")
    say(f"         control block {witness[2]}")
    ph.end("confirmed")
    return {"ok": True, "scenario": "recovery", "wallets": n, "blocks": blocks,
            "descriptor": descriptor, "address": address, "txid": rec["txid"],
            "block_hash": block_hash, "witness": witness, "timings_s": dict(ph.done),
            "total_s": ph.elapsed()}
