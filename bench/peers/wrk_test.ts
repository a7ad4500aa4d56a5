import assert from "node:assert/strict";
import { parseWrk, wrkDurationMs } from "./wrk.ts";

const SAMPLE = `Running 10s test @ http://127.0.0.1:8080/health
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms    1.01ms  30.12ms   90.00%
    Req/Sec    15.21k     1.20k   18.00k    70.00%
  Latency Distribution
     50%    1.95ms
     75%    2.40ms
     90%    3.10ms
     99%  812.00us
  302650 requests in 10.00s, 40.12MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  30265.00
Transfer/sec:      4.01MB
`;

Deno.test("parseWrk reads requests, rate, percentiles in any unit and every kind of error", () => {
  assert.deepEqual(parseWrk(SAMPLE), {
    requests: 302650,
    reqPerS: 30265,
    p50Ms: 1.95,
    p99Ms: 0.812,
    errors: 7,
  });
});

Deno.test("wrkDurationMs converts wrk's units and rejects anything else", () => {
  assert.deepEqual(wrkDurationMs("1.5s"), 1500);
  assert.deepEqual(wrkDurationMs("250us"), 0.25);
  assert.ok(Number.isNaN(wrkDurationMs("fast")));
});
