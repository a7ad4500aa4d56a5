import assert from "node:assert/strict";
import { parseLeadCsv, parseLeadJson } from "./csv.ts";
import { LeadImportError } from "./errors.ts";

const opts = { source: "csv:test", defaultRegion: "US" };

// CRLF line ends, a blank line, a quoted field with a line break in it and
// one with escaped quotes: the line of each row is where the row starts.
const MIXED = [
  "Name,Category,City,Rating,Reviews,Website,Phone,Email,External ID", // 1
  "Joe's Pizza,Restaurant,Duluth,4.5,120,,(218) 555-0142,joe@example.com,p1", // 2
  "", // 3
  '"Harbor ""Fresh"" Fish",Market,"Duluth",4.1,33,harborfish.com,218-555-0100,,p2', // 4
  '"Lakeside', // 5
  'Plumbing, Inc.",Plumber,Superior,3.9,12,no,+1 715 555 0199,INFO@lakeside.example,p3', // 6
  "Bad Rating,Salon,Duluth,9,4,,,,p4", // 7
  "Too,Few,Fields", // 8
  'Broken "quote",Cafe,Duluth,4,1,,,,p5', // 9
  '"Closed"x,Cafe,Duluth,4,1,,,,p6', // 10
  "Last Good,Bakery,Duluth,,,yes,,,", // 11
].join("\r\n") + "\r\n";

function assertImportError(code: string, status: number, message?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof LeadImportError, String(err));
    assert.equal(err.name, "LeadImportError");
    assert.equal(err.code, code);
    assert.equal(err.status, status);
    if (message) assert.match(err.message, message);
    return true;
  };
}

Deno.test("parseLeadCsv() keeps good rows and rejects bad ones with their physical line", async () => {
  const { records, rejected, ignoredColumns } = await parseLeadCsv(MIXED, opts);
  assert.deepEqual(rejected, [
    { line: 7, reason: "rating must be between 0 and 5 (got 9)" },
    { line: 8, reason: "expected 9 fields, found 3" },
    { line: 9, reason: "malformed CSV: a quote appears inside an unquoted field" },
    { line: 10, reason: "malformed CSV: a closing quote is followed by other characters" },
  ]);
  assert.deepEqual(ignoredColumns, []);
  assert.deepEqual(
    records.map((r) => r.external_id.startsWith("sha256:") ? "derived" : r.external_id),
    [
      "p1",
      "p2",
      "p3",
      "derived",
    ],
  );
  const [joe, harbor, lakeside, last] = records;
  assert.equal(joe!.phone, "+12185550142");
  assert.equal(joe!.has_website, false);
  assert.equal(harbor!.name, 'Harbor "Fresh" Fish');
  assert.equal(harbor!.website, "https://harborfish.com/");
  assert.equal(harbor!.email, null);
  assert.equal(lakeside!.name, "Lakeside Plumbing, Inc.");
  assert.equal(lakeside!.has_website, false);
  assert.equal(lakeside!.phone, "+17155550199");
  assert.equal(lakeside!.email, "info@lakeside.example");
  assert.equal(last!.has_website, true);
  assert.equal(last!.source, "csv:test");
});

Deno.test("parseLeadCsv() derives the same external ids on every run", async () => {
  const first = await parseLeadCsv(MIXED, opts);
  const second = await parseLeadCsv(MIXED.replaceAll("\r\n", "\n"), opts);
  assert.deepEqual(second.records, first.records);
  assert.deepEqual(second.rejected, first.rejected, "LF files number lines like CRLF files");
});

Deno.test("parseLeadCsv() rejects an unclosed quote without losing earlier rows", async () => {
  const { records, rejected } = await parseLeadCsv('name,city\nA,B\n"Open,C\nD,E\n', opts);
  assert.deepEqual(records.map((r) => r.name), ["A"]);
  assert.deepEqual(rejected, [{
    line: 3,
    reason: "malformed CSV: a quoted field is never closed",
  }]);
});

Deno.test("parseLeadCsv() skips a UTF-8 BOM in text and in bytes", async () => {
  const text = "\uFEFFname,city\nCafé Nord,Duluth\n";
  const bytes = new TextEncoder().encode(text);
  assert.deepEqual([...bytes.slice(0, 3)], [0xef, 0xbb, 0xbf]);
  for (const input of [text, bytes]) {
    const { records, rejected } = await parseLeadCsv(input, opts);
    assert.deepEqual(rejected, []);
    assert.equal(records.length, 1);
    assert.equal(records[0]!.name, "Café Nord");
    assert.equal(records[0]!.city, "Duluth");
  }
});

Deno.test("parseLeadCsv() matches columns case-insensitively and reports unknown ones", async () => {
  const { records, ignoredColumns } = await parseLeadCsv(
    "NAME,Has Website,Street Address,\nA,TRUE,1 Main St,\n",
    opts,
  );
  assert.deepEqual(ignoredColumns, ["street_address"]);
  assert.equal(records[0]!.has_website, true);
  const headerOnly = await parseLeadCsv("name,city\r\n", opts);
  assert.deepEqual(headerOnly, { records: [], rejected: [], ignoredColumns: [] });
});

Deno.test("parseLeadCsv() refuses a file without a usable header", async () => {
  await assert.rejects(
    parseLeadCsv("Joe's Pizza,Restaurant,Duluth,4.5\nHarbor Fish,Market,Duluth,4.1\n", opts),
    assertImportError("invalid-csv", 400, /has no "name" column/),
  );
  await assert.rejects(parseLeadCsv("", opts), assertImportError("invalid-csv", 400, /empty/));
  await assert.rejects(
    parseLeadCsv("\uFEFF\r\n\r\n", opts),
    assertImportError("invalid-csv", 400, /empty/),
  );
  await assert.rejects(
    parseLeadCsv("name,city,Name\nA,B,C\n", opts),
    assertImportError("invalid-csv", 400, /"name" twice/),
  );
  await assert.rejects(
    parseLeadCsv('"name,city\nA,B\n', opts),
    assertImportError("invalid-csv", 400, /header on line 1/),
  );
  await assert.rejects(
    parseLeadCsv(new Uint8Array([0x6e, 0x61, 0x6d, 0x65, 0x0a, 0xff, 0xfe]), opts),
    assertImportError("invalid-csv", 400, /not valid UTF-8/),
  );
});

Deno.test("parseLeadCsv() refuses more data rows than maxRows", async () => {
  const csv = "name\nA\nB\nC\n";
  assert.equal((await parseLeadCsv(csv, { ...opts, maxRows: 3 })).records.length, 3);
  await assert.rejects(
    parseLeadCsv(csv, { ...opts, maxRows: 2 }),
    assertImportError("too-many-rows", 413, /has 3 rows; the limit is 2/),
  );
});

Deno.test("parseLeadJson() numbers rejections by item and accepts text, bytes or arrays", async () => {
  const items = [
    { Name: "Good", City: "Duluth", rating: 4.2, reviews: 10, phone: "+1 218 555 0142" },
    { name: "Bad", rating: -1 },
    42,
    { name: "Also good", "External ID": "x1", unknown_key: true },
  ];
  const text = JSON.stringify(items);
  for (const input of [items, text, new TextEncoder().encode(`\uFEFF${text}`)]) {
    const { records, rejected, ignoredColumns } = await parseLeadJson(input, opts);
    assert.deepEqual(records.map((r) => r.name), ["Good", "Also good"]);
    assert.equal(records[0]!.phone, "+12185550142");
    assert.equal(records[1]!.external_id, "x1");
    assert.deepEqual(rejected, [
      { line: 2, reason: "rating must be between 0 and 5 (got -1)" },
      { line: 3, reason: "item must be an object" },
    ]);
    assert.deepEqual(ignoredColumns, ["unknown_key"]);
  }
});

Deno.test("parseLeadJson() refuses input that is not a JSON array", async () => {
  await assert.rejects(
    parseLeadJson('{"name":"A"}', opts),
    assertImportError("invalid-json", 400, /must be an array/),
  );
  await assert.rejects(
    parseLeadJson("[{", opts),
    assertImportError("invalid-json", 400, /cannot be parsed/),
  );
  await assert.rejects(
    parseLeadJson([{}, {}], { ...opts, maxRows: 1 }),
    assertImportError("too-many-rows", 413),
  );
});
