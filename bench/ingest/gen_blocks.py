#!/usr/bin/env python3
"""Deterministic generator of realistic Ethereum JSON-RPC blocks for the
ingest benchmark: eth_getBlockByNumber(n, true) and eth_getBlockReceipts(n)
results, 150 transactions and 400 logs per block by default.

Writes one line per block: {"block": {...}, "receipts": [...]} (no tabs or
backslashes, so COPY's text format takes the lines as they are).

    gen_blocks.py --blocks 200 --seed 1 > blocks.jsonl
"""
import argparse
import json
import random
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--blocks", type=int, default=200)
    ap.add_argument("--txs", type=int, default=150)
    ap.add_argument("--logs", type=int, default=400)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", type=int, default=19000000)
    a = ap.parse_args()
    rnd = random.Random(a.seed)

    def h(n):
        return "0x" + "".join(rnd.choice("0123456789abcdef") for _ in range(2 * n))

    def q(v):
        return hex(v)

    senders = [h(20) for _ in range(500)]
    contracts = [h(20) for _ in range(60)]
    sigs = [h(32) for _ in range(30)]
    parent = h(32)
    ts = 1700000000
    out = sys.stdout
    for i in range(a.blocks):
        num = a.start + i
        bhash = h(32)
        ts += 12
        # which transaction each log belongs to: most txs have a few, some none
        # (failed transactions have none, so exactly --logs logs per block)
        statuses = [0 if rnd.random() < 0.03 else 1 for _ in range(a.txs)]
        ok = [t for t in range(a.txs) if statuses[t]]
        owners = sorted(rnd.choice(ok) for _ in range(a.logs))
        txs, receipts = [], []
        log_index = 0
        cum = 0
        for t in range(a.txs):
            thash = h(32)
            to = rnd.choice(contracts) if rnd.random() < 0.7 else rnd.choice(senders)
            frm = rnd.choice(senders)
            create = rnd.random() < 0.01
            gas_used = rnd.randrange(21000, 400000)
            cum += gas_used
            status = statuses[t]
            ttype = rnd.choice([0, 2, 2, 2, 2, 1]) if rnd.random() < 0.99 else 3
            tx = {
                "type": q(ttype), "chainId": "0x1", "nonce": q(rnd.randrange(100000)),
                "gas": q(gas_used + 10000), "maxFeePerGas": q(rnd.randrange(10**9, 10**11)),
                "maxPriorityFeePerGas": q(rnd.randrange(10**9)), "gasPrice": q(rnd.randrange(10**9, 10**11)),
                "to": None if create else to, "value": q(rnd.randrange(10**21) if rnd.random() < 0.3 else 0),
                "input": "0x" + h(rnd.choice([0, 4, 36, 68, 132, 260]))[2:], "accessList": [],
                "r": h(32), "s": h(32), "yParity": "0x1", "v": "0x1",
                "hash": thash, "blockHash": bhash, "blockNumber": q(num), "transactionIndex": q(t), "from": frm,
            }
            logs = []
            if status == 1:
                for _ in range(owners.count(t)):
                    ntop = rnd.choice([1, 2, 3, 3, 3, 4, 0])
                    topics = ([rnd.choice(sigs)] + [h(32) for _ in range(ntop - 1)]) if ntop else []
                    logs.append({
                        "address": rnd.choice(contracts), "topics": topics,
                        "data": "0x" + h(rnd.choice([0, 32, 64, 96, 128]))[2:],
                        "blockHash": bhash, "blockNumber": q(num), "blockTimestamp": q(ts),
                        "transactionHash": thash, "transactionIndex": q(t), "logIndex": q(log_index),
                        "removed": False,
                    })
                    log_index += 1
            receipts.append({
                "type": q(ttype), "status": q(status), "cumulativeGasUsed": q(cum), "gasUsed": q(gas_used),
                "effectiveGasPrice": q(rnd.randrange(10**9, 10**11)), "logsBloom": "0x" + "0" * 512,
                "transactionHash": thash, "transactionIndex": q(t), "blockHash": bhash, "blockNumber": q(num),
                "blockTimestamp": ts, "from": frm, "to": tx["to"],
                "contractAddress": h(20) if create else None, "logs": logs,
            })
            txs.append(tx)
        block = {
            "number": q(num), "hash": bhash, "parentHash": parent, "timestamp": q(ts),
            "miner": rnd.choice(senders), "gasLimit": q(30000000), "gasUsed": q(cum),
            "baseFeePerGas": q(rnd.randrange(10**9, 5 * 10**10)), "logsBloom": "0x" + "f" * 512,
            "stateRoot": h(32), "receiptsRoot": h(32), "transactionsRoot": h(32), "size": q(rnd.randrange(10**5)),
            "transactions": txs,
        }
        out.write(json.dumps({"block": block, "receipts": receipts}, separators=(",", ":")))
        out.write("\n")
        parent = bhash


if __name__ == "__main__":
    main()
