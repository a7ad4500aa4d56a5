import assert from "node:assert/strict";
import { renderDocsPage, renderSchema, type Schema } from "./docs_page.ts";

Deno.test("renderSchema() expands references in place and links their names", () => {
  const schemas: Record<string, Schema> = {
    Page: {
      type: "object",
      properties: { data: { type: "array", items: { $ref: "#/components/schemas/Item" } } },
      required: ["data"],
    },
    Item: {
      type: "object",
      properties: {
        id: { type: "string", format: "uuid" },
        size: { type: ["integer", "null"], minimum: 0, maximum: 9 },
        kind: { type: "string", enum: ["a", "b"], description: "What it is" },
      },
      additionalProperties: false,
    },
  };
  const html = renderSchema({ $ref: "#/components/schemas/Page" }, schemas);
  assert.match(html, /^<a class="ref" href="#schema-Page">Page<\/a>/);
  assert.match(html, /<code>data<\/code> <span class="req">required<\/span>/);
  assert.match(html, /href="#schema-Item">Item<\/a>/);
  assert.match(html, /<code>id<\/code> <span class="t">string \(uuid\)<\/span>/);
  assert.match(html, /integer \| null<\/span> <span class="c">≥ 0; ≤ 9<\/span>/);
  assert.match(html, /— What it is <span class="c">one of &quot;a&quot;, &quot;b&quot;/);
  assert.match(html, /no other fields/);
});

Deno.test("renderSchema() stops at a schema that refers to itself", () => {
  const schemas: Record<string, Schema> = {
    Node: {
      type: "object",
      properties: {
        name: { type: "string" },
        children: { type: "array", items: { $ref: "#/components/schemas/Node" } },
      },
    },
  };
  const html = renderSchema({ $ref: "#/components/schemas/Node" }, schemas);
  // Expanded once, then the inner reference is only a link.
  assert.equal(html.match(/<code>name<\/code>/g)?.length, 1);
  assert.match(html, /of <a class="ref" href="#schema-Node">Node<\/a><\/li>/);
});

Deno.test("renderSchema() lists alternatives and escapes text", () => {
  const html = renderSchema({
    anyOf: [{ type: "string", description: "<b>x</b>" }, { type: "object", properties: {} }],
  }, {});
  assert.match(html, /^any of:<ol><li><span class="t">string<\/span> — &lt;b&gt;x&lt;\/b&gt;/);
  assert.equal(renderSchema({}, {}), '<span class="t">any</span>');
});

Deno.test("renderDocsPage() shows parameters, bodies and responses of each operation", () => {
  const page = renderDocsPage({
    info: { title: "T <API>" },
    paths: {
      "/v1/things": {
        post: {
          operationId: "createThing",
          summary: "Make one",
          security: [{ bearer: [] }],
          parameters: [{ $ref: "#/components/parameters/RequestId" } as never],
          requestBody: {
            required: true,
            content: { "application/json": { schema: { $ref: "#/components/schemas/Thing" } } },
          },
          responses: {
            "201": {
              description: "Made",
              content: { "application/json": { schema: { $ref: "#/components/schemas/Thing" } } },
            },
            "400": {
              description: "Bad",
              content: {
                "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } },
              },
            },
          },
        },
      },
    },
    components: {
      parameters: {
        RequestId: { name: "X-Request-Id", in: "header", description: "Correlates" },
      },
      schemas: {
        Thing: { type: "object", properties: { label: { type: "string" } } },
        Problem: { type: "object", properties: { code: { type: "string" } } },
      },
    },
  });
  assert.match(page, /<title>T &lt;API&gt;<\/title>/);
  const op = page.slice(page.indexOf('<section id="createThing">'), page.indexOf("</section>"));
  assert.match(op, /<td><code>X-Request-Id<\/code><\/td><td>header<\/td><td>Correlates/);
  assert.match(op, /Requires <code>Authorization: Bearer &lt;jwt&gt;<\/code>/);
  assert.match(op, /Request body<\/h3><div class="media"><code>application\/json<\/code> <a/);
  assert.match(op, /<b>201<\/b> Made.*<code>label<\/code>/);
  // Errors link the shared problem shape instead of repeating it.
  assert.match(
    op,
    /<b>400<\/b> Bad<div class="media"><code>application\/problem\+json<\/code> <a class="ref" href="#schema-Problem">Problem<\/a><\/div>/,
  );
  assert.match(page, /<section id="schema-Thing"><h3>Thing<\/h3>/);
});
