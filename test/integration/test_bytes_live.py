#!/usr/bin/env python3
"""Byte counters move while a connection lives, not only when it closes.

A pooled database connection may live for hours: 2 MiB sent and echoed
over one open connection must show in ringlb_server_bytes_in_total and
ringlb_server_bytes_out_total (at most 64 KiB behind) before it closes.
They used to stay at 0 until the close.
"""
import lbtest
from lbtest import check

SIZE, CHUNK, LAG = 2 << 20, 32 << 10, 64 << 10


def main(t):
    echo = t.backend("echo")
    lb, adm = lbtest.admin_ringlb(t, servers=[echo])
    base_in = lbtest.metric_sum(adm, "ringlb_server_bytes_in_total")
    base_out = lbtest.metric_sum(adm, "ringlb_server_bytes_out_total")
    s = lbtest.connect(lb.addr, timeout=10)
    for off in range(0, SIZE, CHUNK):
        check(lbtest.echoes(s, bytes([off // CHUNK % 256]) * CHUNK), f"echo at {off} bytes")
    got = {}

    def counted():
        got["in"] = lbtest.metric_sum(adm, "ringlb_server_bytes_in_total") - base_in
        got["out"] = lbtest.metric_sum(adm, "ringlb_server_bytes_out_total") - base_out
        return got["in"] >= SIZE - LAG and got["out"] >= SIZE - LAG

    lbtest.wait_until(counted, f"the byte counters to reach {SIZE - LAG} with the connection "
                               f"open", 10)
    check(got["in"] <= SIZE and got["out"] <= SIZE, f"never more than was sent: {got}")
    s.close()
    lbtest.wait_until(lambda: counted() and got["in"] == SIZE and got["out"] == SIZE,
                      f"exactly {SIZE} each way once closed", 10)


if __name__ == "__main__":
    lbtest.run(main)
