#!/usr/bin/env python3
"""Deterministic data of the operations benchmark (bench/ops/run.sh).

Several chains, each with BLOCKS blocks of TPB transactions shaped as
eth_getBlockByNumber(n, true) and eth_getBlockReceipts(n) return them, with
their logs (ERC-20 Transfer and Approval, Uniswap-V2 Swap and Sync, WETH
Deposit, a bridge's MessageSent) over a Zipf-skewed set of contracts; account
state histories with churn; cross-chain messages between the chains (sent,
most delivered, some pending, some failed).  Same seed and scale, same bytes.

Keys are built from numbers so that pgbench scripts can name them
(pgbench computes only integers; the scripts build the text in SQL):
  chain c (1..chains)  chain_id 'chain' || c, evm chain id EVM_IDS[c-1],
                       blocks c * 10000000 .. c * 10000000 + blocks - 1
  account a (0..accounts-1)   '0x' || repeat((1000000000 + a)::text, 4)
  contract j (0..contracts-1) '0x' || repeat((2000000000 + j)::text, 4)
                       (rank j of the Zipf distribution: 0 the busiest)
  transaction k of chain c (0..blocks*tpb-1, block k / tpb, index k % tpb)
                       '0x000' || c || repeat((1000000000 + k)::text, 6)
  message m (0..messages-1)   source chain m % chains + 1, source transaction
                       (m / chains) * stride of that chain, protocol 'bench',
                       message_key 'm' || m

Writes into OUTDIR:
  blocks.tsv    chain_id <TAB> block number <TAB> {"block":...,"receipts":[...]}
  states.tsv    chain_id, account, block_number, state (jsonb)
  messages.tsv  message_key, source chain, source tx hash, destination chain,
                destination tx hash or \\N, status, sent_at, delivered_at or \\N, payload
  params.env    the numbers the pgbench scripts need (NAME=value lines)

    gen.py --scale small --seed 1 OUTDIR
"""
import argparse
import bisect
import hashlib
import itertools
import json
import os
import random

SCALES = {"small": 200, "default": 2000, "large": 20000}
EVM_IDS = [1, 10, 42161, 8453, 137, 56, 43114, 250]
BLOCK_TIME = 12              # seconds: every chain covers the same time span
T_END = 1733500000          # the newest block of every chain: 2024-12-06 15:46:40 UTC

# topic0 of the events (keccak-256 of the signatures)
TRANSFER = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
APPROVAL = "0x8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925"
SWAP = "0xd78ad95fa46c994b6551d0da85fc275fe613ce37657fb8d5e3d130840159d822"
SYNC = "0x1c411e9a96e071241c2f21f7726b17ae89e3cab4c78be50e062b03a9fffbbad1"
DEPOSIT = "0xe1fffcc4923d04b559f4d29a8bfc6cda04eb5b0d3c460751c2402c5c5cc9109c"
# MessageSent(bytes32,uint256,address) of the bench's bridge (any fixed 32 bytes)
MESSAGE_SENT = "0x" + hashlib.sha256(b"MessageSent(bytes32,uint256,address)").hexdigest()
TOPICS = [TRANSFER, APPROVAL, SWAP, SYNC, DEPOSIT]


def account(a):
    return "0x" + str(1000000000 + a) * 4


def contract(j):
    return "0x" + str(2000000000 + j) * 4


def pad(addr):
    return "0x" + "0" * 24 + addr[2:]


def tx_hash(c, k):
    return "0x000" + str(c) + str(1000000000 + k) * 6


def block_hash(c, n):
    return "0x" + hashlib.sha256(("%d:%d" % (c, n)).encode()).hexdigest()


def zipf_cdf(n, s=1.1):
    """cumulative weights of ranks 0..n-1, P(rank r) ~ 1 / (r + 1)^s, as pgbench's random_zipfian"""
    return list(itertools.accumulate(1.0 / (r + 1) ** s for r in range(n)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="small", help="small, default, large or blocks per chain")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--chains", type=int, default=3)
    ap.add_argument("--tpb", type=int, default=60, help="transactions per block")
    ap.add_argument("outdir")
    a = ap.parse_args()
    blocks = SCALES[a.scale] if a.scale in SCALES else int(a.scale)
    if blocks < 10 or not 2 <= a.chains <= len(EVM_IDS) or a.tpb < 4:
        ap.error("need at least 10 blocks per chain, 2 to %d chains, 4 transactions per block" % len(EVM_IDS))
    chains, tpb = a.chains, a.tpb
    naccounts = 5 * blocks
    ncontracts = max(100, blocks)
    msgs_per_chain = max(10, blocks * 5 // 2)
    stride = blocks * tpb // msgs_per_chain      # every stride-th transaction sends a message
    nmessages = msgs_per_chain * chains
    updates = 25                                 # state rows written per block (before de-duplication)
    rnd = random.Random(a.seed)
    acc_cdf, con_cdf = zipf_cdf(naccounts), zipf_cdf(ncontracts)
    acc_total, con_total = acc_cdf[-1], con_cdf[-1]

    def hot_account():
        return bisect.bisect(acc_cdf, rnd.random() * acc_total)

    def hot_contract():
        return min(bisect.bisect(con_cdf, rnd.random() * con_total), ncontracts - 1)

    def hexn(nbytes):
        return "0x%0*x" % (2 * nbytes, rnd.getrandbits(8 * nbytes))

    def ts_of(c, i):
        return T_END - (blocks - 1 - i) * BLOCK_TIME

    bridge = "0x" + "b" * 40
    os.makedirs(a.outdir, exist_ok=True)
    q = hex
    nlogs = 0
    with open(os.path.join(a.outdir, "blocks.tsv"), "w") as out:
        for c in range(1, chains + 1):
            first = c * 10000000
            for i in range(blocks):
                num = first + i
                ts = ts_of(c, i)
                bhash = block_hash(c, num)
                txs, receipts = [], []
                log_index = 0
                cum = 0
                for t in range(tpb):
                    k = i * tpb + t
                    thash = tx_hash(c, k)
                    frm = account(hot_account())
                    logs = []
                    value = 0
                    if k % stride == 0:                 # a message to another chain
                        kind, to, status = "bridge", bridge, 1
                    else:
                        kind = rnd.choices(["eth", "token", "approve", "swap", "deposit"], [25, 45, 10, 15, 5])[0]
                        status = 0 if rnd.random() < 0.03 else 1
                        to = account(hot_account()) if kind == "eth" else contract(hot_contract())
                    if kind == "eth":
                        data = "0x"
                        value = rnd.randrange(10**15, 10**19)
                    elif kind == "deposit":
                        data = "0xd0e30db0"
                        value = rnd.randrange(10**15, 10**19)
                    else:
                        data = "0xa9059cbb" + "%064x" % rnd.getrandbits(160) + "%064x" % rnd.getrandbits(96)
                    gas_used = 21000 if kind == "eth" else rnd.randrange(40000, 250000)
                    cum += gas_used

                    def log(addr, topics, nbytes):
                        nonlocal log_index
                        logs.append({
                            "address": addr, "topics": topics,
                            "data": hexn(nbytes) if nbytes else "0x",
                            "blockHash": bhash, "blockNumber": q(num), "blockTimestamp": q(ts),
                            "transactionHash": thash, "transactionIndex": q(t), "logIndex": q(log_index),
                            "removed": False,
                        })
                        log_index += 1

                    if status == 1:
                        if kind == "token":
                            log(to, [TRANSFER, pad(frm), pad(account(hot_account()))], 32)
                        elif kind == "approve":
                            log(to, [APPROVAL, pad(frm), pad(contract(hot_contract()))], 32)
                        elif kind == "swap":
                            pair = to
                            log(contract(hot_contract()), [TRANSFER, pad(frm), pad(pair)], 32)
                            log(contract(hot_contract()), [TRANSFER, pad(pair), pad(frm)], 32)
                            log(pair, [SYNC], 64)
                            log(pair, [SWAP, pad(frm), pad(frm)], 128)
                        elif kind == "deposit":
                            log(to, [DEPOSIT, pad(frm)], 32)
                        elif kind == "bridge":
                            log(bridge, [MESSAGE_SENT, "0x%064x" % (k // stride)], 64)
                    nlogs += len(logs)
                    txs.append({
                        "type": "0x2", "chainId": q(EVM_IDS[c - 1]), "nonce": q(rnd.randrange(5000)),
                        "gas": q(gas_used + 20000), "maxFeePerGas": q(rnd.randrange(10**9, 10**11)),
                        "maxPriorityFeePerGas": q(rnd.randrange(10**9)), "gasPrice": q(rnd.randrange(10**9, 10**11)),
                        "to": to, "value": q(value), "input": data, "accessList": [],
                        "r": hexn(32), "s": hexn(32), "yParity": "0x1", "v": "0x1",
                        "hash": thash, "blockHash": bhash, "blockNumber": q(num), "transactionIndex": q(t), "from": frm,
                    })
                    receipts.append({
                        "type": "0x2", "status": q(status), "cumulativeGasUsed": q(cum), "gasUsed": q(gas_used),
                        "effectiveGasPrice": q(rnd.randrange(10**9, 10**11)), "logsBloom": "0x" + "0" * 512,
                        "transactionHash": thash, "transactionIndex": q(t), "blockHash": bhash, "blockNumber": q(num),
                        "from": frm, "to": to, "contractAddress": None, "logs": logs,
                    })
                block = {
                    "number": q(num), "hash": bhash, "parentHash": block_hash(c, num - 1), "timestamp": q(ts),
                    "miner": account(rnd.randrange(50)), "gasLimit": q(30000000), "gasUsed": q(cum),
                    "baseFeePerGas": q(rnd.randrange(10**9, 5 * 10**10)), "logsBloom": "0x" + "0" * 512,
                    "stateRoot": hexn(32), "receiptsRoot": hexn(32), "transactionsRoot": hexn(32),
                    "size": q(rnd.randrange(10**4, 10**5)), "transactions": txs,
                }
                out.write("chain%d\t%d\t%s\n" % (c, num, json.dumps({"block": block, "receipts": receipts},
                                                                     separators=(",", ":"))))

    # account states: each block changes about `updates` accounts, most of
    # them hot (Zipf), the rest from a window that moves through the account
    # numbers (accounts appear, are active for a while, and go quiet)
    nstates = 0
    with open(os.path.join(a.outdir, "states.tsv"), "w") as out:
        window = max(20, naccounts // 50)
        for c in range(1, chains + 1):
            balance, nonce = {}, {}
            for i in range(blocks):
                pos = i * naccounts // blocks
                changed = set()
                for _ in range(updates):
                    if rnd.random() < 0.7:
                        changed.add(hot_account())
                    else:
                        changed.add(rnd.randrange(max(0, pos - window), min(naccounts, pos + 1)))
                for acc in sorted(changed):
                    b = max(0, balance.get(acc, rnd.randrange(10**20)) + rnd.randrange(-10**18, 10**18))
                    balance[acc] = b
                    nonce[acc] = nonce.get(acc, 0) + 1
                    out.write("chain%d\t%s\t%d\t%s\n" % (c, account(acc), c * 10000000 + i, json.dumps(
                        {"balance": str(b), "nonce": nonce[acc]}, separators=(",", ":"))))
                    nstates += 1

    # cross-chain messages: sent by every stride-th transaction, delivered
    # 30 s to 20 min later (at most a tenth of the time span) in a transaction of the destination chain's block
    # of that time; pending when that block is past the newest (or, 3 %,
    # stuck), failed 4 % of the time (executed and reverted at the destination)
    counts = {"delivered": 0, "pending": 0, "failed": 0}
    with open(os.path.join(a.outdir, "messages.tsv"), "w") as out:
        for m in range(nmessages):
            c = m % chains + 1
            k = (m // chains) * stride
            sent = ts_of(c, k // tpb)
            d = rnd.choice([x for x in range(1, chains + 1) if x != c])
            arrive = sent + rnd.randrange(30, max(31, min(1200, blocks * BLOCK_TIME // 10)))
            j = blocks - 1 - (T_END - arrive) // BLOCK_TIME   # the destination block of that time
            u = rnd.random()
            status = "pending" if j >= blocks or u < 0.03 else ("failed" if u < 0.07 else "delivered")
            counts[status] += 1
            if status == "pending":
                dest, delivered = "\\N", "\\N"
            else:
                dest = tx_hash(d, j * tpb + rnd.randrange(tpb))
                delivered = str(ts_of(d, j)) if status == "delivered" else "\\N"
            payload = json.dumps({"nonce": m, "amount": str(rnd.randrange(10**15, 10**21)),
                                  "token": contract(hot_contract()), "recipient": account(hot_account())},
                                 separators=(",", ":"))
            out.write("m%d\tchain%d\t%s\tchain%d\t%s\t%s\t%d\t%s\t%s\n"
                      % (m, c, tx_hash(c, k), d, dest, status, sent, delivered, payload))

    params = {
        "chains": chains, "blocks": blocks, "tpb": tpb, "accounts": naccounts, "contracts": ncontracts,
        "messages": nmessages, "stride": stride, "transactions": chains * blocks * tpb, "logs": nlogs,
        "states": nstates, "delivered": counts["delivered"], "pending": counts["pending"],
        "failed": counts["failed"], "t_end": T_END, "seed": a.seed,
    }
    with open(os.path.join(a.outdir, "params.env"), "w") as out:
        for name, value in params.items():
            out.write("%s=%s\n" % (name, value))


if __name__ == "__main__":
    main()
