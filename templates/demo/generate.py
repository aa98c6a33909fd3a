#!/usr/bin/env python3
"""Regenerates the demo data set of `mlgit demo` under data/ next to this file.

Not embedded in the binary and not needed at run time: the generated files are
committed. The output is deterministic (fixed seed, no dependency but the
standard library), so running it again rewrites the same bytes.

The data: a customer churn problem, 24 weekly CSV batches of 11-15 customers.
Each batch is about 60 % "no" (majority baseline ~0.6 on any set of batches);
support_calls separates the classes well, tenure_months and contract less so,
monthly_charges barely: a one-feature rule reaches ~0.9.
Next to it, files that `mlgit clean` must drop: an empty file, invalid UTF-8,
a JSONL file with a malformed line, a truncated PNG and a JPEG without EOI.
"""
import json
import os
import random
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
rng = random.Random(20240501)


def pick(weights):
    """Index drawn with the given weights (only rng.random(), stable across Pythons)."""
    x = rng.random() * sum(weights)
    for i, w in enumerate(weights):
        x -= w
        if x < 0:
            return i
    return len(weights) - 1


def shuffle(items):
    for i in range(len(items) - 1, 0, -1):
        j = int(rng.random() * (i + 1))
        items[i], items[j] = items[j], items[i]


def write(rel, data):
    path = os.path.join(DATA, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))


def customer(churned):
    if churned:
        calls = 2 + pick([5, 15, 25, 20, 15, 10, 5, 5])  # 2..9, mostly 4+
        tenure = 1 + int(rng.random() ** 1.8 * 36)  # mostly short
        contract = ["monthly", "annual", "biennial"][pick([80, 15, 5])]
        charges = 45 + rng.random() * 70
    else:
        calls = pick([35, 35, 22, 8])  # 0..3, mostly 0-2
        tenure = 3 + int(rng.random() ** 0.7 * 69)  # mostly long
        contract = ["monthly", "annual", "biennial"][pick([35, 40, 25])]
        charges = 20 + rng.random() * 80
    return tenure, "%.2f" % charges, contract, calls


def customers():
    header = "customer_id,tenure_months,monthly_charges,contract,support_calls,churned\n"
    next_id = 1
    for batch in range(1, 25):
        n = 11 + pick([1, 1, 1, 1, 1])
        n_yes = (2 * n + 2) // 5  # 11 -> 4, 12/13 -> 5, 14/15 -> 6
        labels = ["yes"] * n_yes + ["no"] * (n - n_yes)
        shuffle(labels)
        rows = []
        for label in labels:
            tenure, charges, contract, calls = customer(label == "yes")
            rows.append("C%04d,%d,%s,%s,%d,%s\n" % (next_id, tenure, charges, contract, calls, label))
            next_id += 1
        write("customers/batch-%02d.csv" % batch, header + "".join(rows))
    return next_id - 1


def events(n_customers):
    kinds = ["login", "support_call", "plan_change", "invoice_paid"]
    for month in (1, 2):
        lines = []
        for day in range(1, 21):
            record = {
                "customer_id": "C%04d" % (1 + int(rng.random() * n_customers)),
                "event": kinds[pick([50, 20, 5, 25])],
                "ts": "2024-%02d-%02dT%02d:%02d:00Z" % (month, day, 8 + int(rng.random() * 10), int(rng.random() * 60)),
            }
            lines.append(json.dumps(record, separators=(",", ":")) + "\n")
        write("events/2024-%02d.jsonl" % month, "".join(lines))
    write(
        "events/broken.jsonl",
        '{"customer_id":"C0007","event":"login","ts":"2024-03-01T09:12:00Z"}\n'
        '{"customer_id":"C0042","event":"support_call","ts":"2024-03-01T10:40:00Z"}\n'
        '{"customer_id":"C0113","event":"plan_ch\n'
        '{"customer_id":"C0007","event":"invoice_paid","ts":"2024-03-02T08:05:00Z"}\n',
    )


def png(width, height, pixel):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    raw = b"".join(
        b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width)) for y in range(height)
    )
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def gif(width, height, palette, index):
    """GIF89a with a 4-colour palette; LZW codes stay 3 bits wide by clearing every two pixels."""
    codes = []
    pixels = [index(x, y) for y in range(height) for x in range(width)]
    for i in range(0, len(pixels), 2):
        codes.append(4)  # clear code
        codes.extend(pixels[i:i + 2])
    codes.append(5)  # end of information
    bits, nbits, packed = 0, 0, bytearray()
    for code in codes:
        bits |= code << nbits
        nbits += 3
        while nbits >= 8:
            packed.append(bits & 0xFF)
            bits >>= 8
            nbits -= 8
    if nbits:
        packed.append(bits & 0xFF)
    blocks = b"".join(bytes([len(packed[i:i + 255])]) + bytes(packed[i:i + 255]) for i in range(0, len(packed), 255))
    return (
        b"GIF89a"
        + struct.pack("<HHBBB", width, height, 0x81, 0, 0)  # global colour table of 4 entries
        + b"".join(bytes(c) for c in palette)
        + b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0)
        + b"\x02" + blocks + b"\x00"
        + b"\x3b"
    )


def images():
    write("images/red.png", png(8, 8, lambda x, y: (220, 40, 40)))
    write("images/checker.png", png(8, 8, lambda x, y: (0, 0, 0) if (x + y) % 2 else (255, 255, 255)))
    write("images/gradient.png", png(8, 8, lambda x, y: (x * 32, y * 32, 128)))
    write("images/diagonal.png", png(8, 8, lambda x, y: (30, 90, 200) if x == y else (240, 240, 240)))
    palette = [(255, 255, 255), (0, 0, 0), (200, 30, 30), (30, 30, 200)]
    write("images/flag.gif", gif(8, 8, palette, lambda x, y: 2 if y < 3 else (0 if y < 5 else 3)))
    noise = png(32, 32, lambda x, y: (int(rng.random() * 256), int(rng.random() * 256), int(rng.random() * 256)))
    write("images/truncated.png", noise[: len(noise) // 2])
    jpeg_head = (
        b"\xff\xd8"  # SOI
        + b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"  # APP0
        + b"\xff\xdb\x00\x43\x00" + bytes(range(1, 65))  # a quantisation table
        + b"\xff\xc0\x00\x0b\x08\x00\x08\x00\x08\x01\x01\x11\x00"  # SOF0 8x8 grey
    )
    write("images/bad.jpg", jpeg_head + bytes(int(rng.random() * 0xF0) for _ in range(64)))  # no EOI


def misc():
    write("empty.txt", b"")
    write("notes/latin1.txt", b"caf\xe9\n")  # Latin-1, not UTF-8
    write("notes/collection.txt", "Batches are exported weekly from the CRM (caf\u00e9 chain accounts included).\n")


def production():
    """Two weeks of production requests on monitoring/prod and the first week's labels, under
    production/ (not data/: this is what the serving side logs, not a vendor delivery). Week 1
    looks like the training data; in week 2 prices went up and more customers are on monthly
    contracts. model-v2 serves 95% of requests, model-v1 keeps 5% as a backtest. Its own random
    generator, so the training data above stays byte for byte the same."""
    global rng
    saved, rng = rng, random.Random(20261130)
    header = "request_id,timestamp,customer_id,tenure_months,monthly_charges,contract,support_calls,prediction,score,model_tag\n"
    labels = ["request_id,label\n"]
    for week in (1, 2):
        rows = []
        for i in range(420):
            churned = rng.random() < 0.4
            tenure, charges, contract, calls = customer(churned)
            if week == 2:
                charges = "%.2f" % (float(charges) + 25 + rng.random() * 10)
                if rng.random() < 0.5:
                    contract = "monthly"
            tag = "model-v1" if rng.random() < 0.05 else "model-v2"
            if tag == "model-v2":
                prediction = "yes" if calls >= 4 else "no"
            else:
                prediction = "no"
            # P(churn | support calls) of the generator above: a calibrated score.
            p_churn = {0: 0.01, 1: 0.01, 2: 0.13, 3: 0.56}.get(calls, 0.97)
            score = min(0.99, max(0.01, p_churn + (rng.random() - 0.5) * 0.04))
            request = "R%d%04d" % (week, i + 1)
            ts = "2026-11-%02dT%02d:%02d:00Z" % (16 + 7 * (week - 1) + i % 7, 8 + i % 10, i % 60)
            rows.append("%s,%s,P%05d,%d,%s,%s,%d,%s,%.3f,%s\n" % (
                request, ts, 1000 * week + i, tenure, charges, contract, calls, prediction, score, tag))
            if week == 1:
                labels.append("%s,%s\n" % (request, "yes" if churned else "no"))
        write_to("production", "requests-week-%d.csv" % week, header + "".join(rows))
    write_to("production", "labels-week-1.csv", "".join(labels))
    rng = saved


def write_to(folder, rel, data):
    path = os.path.join(HERE, folder, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode("utf-8"))


if __name__ == "__main__":
    n = customers()
    events(n)
    images()
    misc()
    production()
