"""Bad gene files: refused by enqueue (400, nothing queued) and, if run anyway, the job ends `failed` with the reason.

Only the job's own folder may change; the other files under the jobs root and beside it stay as they were.
"""

from __future__ import annotations

import pytest
from conftest import DEMO_GENES, call, process

from mljob.status import State

CRLF_DEMO = "\r\n".join(DEMO_GENES).encode() + b"\r\n"
QUEUE_DOWN = (503, "nothing was enqueued")  # valid input: enqueue got as far as the (closed) queue

GENE_CASES = [
    # (id, input_genes.txt, (enqueue status, text), (final state, text in the status message))
    ("empty", b"", (400, "input genes is empty"), (State.FAILED, "input genes is empty")),
    ("only-separators", b" ,;\t\n\r\n,,", (400, "input genes is empty"), (State.FAILED, "input genes is empty")),
    ("binary", bytes(range(256)) * 4, (400, "not UTF-8 text"), (State.FAILED, "not UTF-8 text")),
    ("nul-bytes", b"CDK1\x00CCNB1\n", (400, "contains binary data"), (State.FAILED, "contains binary data")),
    ("utf16", "\n".join(DEMO_GENES).encode("utf-16"), (400, "is UTF-16 text"), (State.FAILED, "is UTF-16 text")),
    (
        "utf16-be",
        "\n".join(DEMO_GENES).encode("utf-16-be").join([b"\xfe\xff", b""]),
        (400, "UTF-16"),
        (State.FAILED, "UTF-16"),
    ),
    ("enormous-line", b"G" * 900_000, (400, "900,000-character entry"), (State.FAILED, "900,000-character entry")),
    (
        "over-max-bytes",
        b"CDK1\n" * 250_000,
        (400, "the most accepted is 1,000,000 bytes"),
        (State.FAILED, "1,000,000 bytes"),
    ),
    (
        "50000-genes",
        "\n".join(f"G{i}" for i in range(50_000)).encode(),
        (400, "has 50,000 distinct genes; the most accepted is 10,000"),
        (State.FAILED, "50,000 distinct genes"),
    ),
    (
        "only-unknown",
        "\n".join(f"NOTAGENE{i}" for i in range(40)).encode(),
        QUEUE_DOWN,
        (State.FAILED, "too few of your genes are in the STRING network for Human: 0 of your 40 genes"),
    ),
    (
        "injection-tokens",
        b"CDK1\n../../etc/passwd\n$(rm -rf /)\n<script>alert(1)</script>\n",
        QUEUE_DOWN,
        (State.FAILED, "too few of your genes"),
    ),
    ("crlf", CRLF_DEMO, QUEUE_DOWN, (State.COMPLETED, "genes were used to train the model")),
    (
        "bom-and-commas",
        b"\xef\xbb\xbf" + ", ".join(DEMO_GENES).encode(),
        QUEUE_DOWN,
        (State.COMPLETED, "genes were used"),
    ),
]


@pytest.mark.parametrize(("data", "enqueued", "final"), [c[1:] for c in GENE_CASES], ids=[c[0] for c in GENE_CASES])
def test_gene_file(world, data, enqueued, final):
    world.job("gene-job")
    (world.folder("gene-job") / "input_genes.txt").write_bytes(data)
    world.mark()
    code, answer = call("enqueue", body=b'{"jobname": "gene-job"}')
    assert (code, list(answer)) == (enqueued[0], ["error"]), answer
    assert enqueued[1] in answer["error"]
    assert world.changed() == []
    assert world.store.read_status("gene-job").status is State.CREATED

    outcome = process(world, b'{"jobname": "gene-job"}')
    status = world.store.read_status("gene-job")
    assert (outcome, status.status) == (final[0].value, final[0]), status.message
    assert final[1] in status.message
    assert world.store.has_results("gene-job") is (final[0] is State.COMPLETED)
    assert world.changed(allowed_job="gene-job") == []


def test_binary_negatives_fail_the_job(world):
    world.job("neg-job")
    (world.folder("neg-job") / "input_negatives.txt").write_bytes(b"\x00\x01\x02")
    world.mark()
    code, answer = call("enqueue", body=b'{"jobname": "neg-job"}')
    assert code == 400 and "negative genes contains binary data" in answer["error"]
    assert process(world, "neg-job") == "failed"
    assert "negative genes contains binary data" in world.store.read_status("neg-job").message
    assert world.changed(allowed_job="neg-job") == []
