import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
// @ts-types="@types/smtp-server"
import { SMTPServer, type SMTPServerOptions } from "smtp-server";
import { classifySmtpError, createSmtpProvider } from "./smtp.ts";
import { EmailPermanentError, EmailProviderConfigError, EmailTransientError } from "../provider.ts";
import { isPermanent } from "../../queue/errors.ts";
import { parseEntity, sampleEmail } from "../../../testing/email.ts";

interface Delivered {
  from: string;
  to: string[];
  raw: string;
}

interface TestServer {
  url: string;
  port: number;
  delivered: Delivered[];
  logins: { username?: string; password?: string }[];
  close(): Promise<void>;
}

/** A real SMTP server on 127.0.0.1 that collects what it accepts. */
async function startSmtp(options: Partial<SMTPServerOptions> = {}): Promise<TestServer> {
  const delivered: Delivered[] = [];
  const logins: { username?: string; password?: string }[] = [];
  const server = new SMTPServer({
    authOptional: true,
    allowInsecureAuth: true,
    disabledCommands: ["STARTTLS"],
    logger: false,
    onAuth(auth, _session, callback) {
      logins.push({ username: auth.username, password: auth.password });
      callback(null, { user: auth.username });
    },
    onData(stream, session, callback) {
      const chunks: Uint8Array[] = [];
      stream.on("data", (chunk: Uint8Array) => chunks.push(chunk));
      stream.on("end", () => {
        delivered.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c]))),
        });
        // smtp-server answers "250 <this text>".
        callback(null, "Ok: queued as 4XkQ9z");
      });
    },
    ...options,
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    url: `smtp://127.0.0.1:${port}`,
    port,
    delivered,
    logins,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function rejectingRcpt(code: number, text: string): Partial<SMTPServerOptions> {
  return {
    onRcptTo(_address, _session, callback) {
      callback(Object.assign(new Error(text), { responseCode: code }));
    },
  };
}

/** A TCP listener that accepts connections and never says a word (a hung server). */
function startSilent() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  let connected = () => {};
  const firstConnection = new Promise<void>((resolve) => connected = resolve);
  const accepting = (async () => {
    for await (const conn of listener) {
      held.push(conn);
      connected();
    }
  })();
  return {
    url: `smtp://127.0.0.1:${listener.addr.port}`,
    held,
    firstConnection,
    async close() {
      listener.close();
      await accepting;
      for (const conn of held) conn.close();
    },
  };
}

const fast = { connectionTimeoutMs: 2_000, greetingTimeoutMs: 2_000, socketTimeoutMs: 5_000 };
// The test servers offer no STARTTLS; tests that log in say so explicitly.
const plaintext = { ...fast, allowPlaintextAuth: true };

Deno.test("smtp provider with credentials never logs in over a connection without TLS", async () => {
  const smtp = await startSmtp();
  try {
    const url = `smtp://mailer:secret@127.0.0.1:${smtp.port}`;
    await assert.rejects(createSmtpProvider(url, fast).send(sampleEmail(), {}));
    assert.deepEqual(smtp.logins, []);
    assert.equal(smtp.delivered.length, 0);
  } finally {
    await smtp.close();
  }
});

Deno.test("smtp provider delivers the message with our Message-ID and reports the queue id", async () => {
  const smtp = await startSmtp();
  try {
    const msg = sampleEmail();
    const result = await createSmtpProvider(smtp.url, fast).send(msg, {});
    assert.equal(result.response, "250 Ok: queued as 4XkQ9z");
    assert.equal(result.providerMessageId, "4XkQ9z");
    assert.equal(smtp.delivered.length, 1);
    const got = smtp.delivered[0]!;
    assert.equal(got.from, "hello@pleasantcove.example");
    assert.deepEqual(got.to, ["sam@harborbakery.example"]);
    const top = parseEntity(got.raw);
    assert.equal(top.headers.get("message-id"), msg.messageId);
    assert.equal(top.headers.get("list-unsubscribe-post"), "List-Unsubscribe=One-Click");
    assert.ok(got.raw.includes("filename=invite.ics"));
  } finally {
    await smtp.close();
  }
});

Deno.test("smtp provider logs in with the URL's percent-decoded credentials", async () => {
  const smtp = await startSmtp();
  try {
    const url = `smtp://mailer:p%40ss%3Aw0rd@127.0.0.1:${smtp.port}`;
    await createSmtpProvider(url, plaintext).send(sampleEmail(), {});
    assert.deepEqual(smtp.logins, [{ username: "mailer", password: "p@ss:w0rd" }]);
    assert.equal(smtp.delivered.length, 1);
  } finally {
    await smtp.close();
  }
});

Deno.test("smtp provider turns a 550 recipient rejection into a permanent error with the server's text", async () => {
  const smtp = await startSmtp(rejectingRcpt(550, "5.1.1 No such user here"));
  try {
    const send = createSmtpProvider(smtp.url, fast).send(sampleEmail(), {});
    await assert.rejects(send, (err) => {
      assert.ok(err instanceof EmailPermanentError);
      assert.ok(isPermanent(err));
      assert.equal(err.status, 550);
      assert.equal(err.message, "550 5.1.1 No such user here");
      return true;
    });
    assert.equal(smtp.delivered.length, 0);
  } finally {
    await smtp.close();
  }
});

Deno.test("smtp provider turns a 451 into a transient error", async () => {
  const smtp = await startSmtp(rejectingRcpt(451, "4.7.1 Greylisted, try again later"));
  try {
    const send = createSmtpProvider(smtp.url, fast).send(sampleEmail(), {});
    await assert.rejects(send, (err) => {
      assert.ok(err instanceof EmailTransientError);
      assert.equal(isPermanent(err), false);
      assert.equal(err.status, 451);
      assert.match(err.message, /Greylisted/);
      return true;
    });
  } finally {
    await smtp.close();
  }
});

Deno.test("smtp provider keeps a rejected login retryable (our secret is wrong, not the message)", async () => {
  const smtp = await startSmtp({
    onAuth(_auth, _session, callback) {
      callback(new Error("Invalid username or password"));
    },
  });
  try {
    const url = `smtp://mailer:wrong@127.0.0.1:${smtp.port}`;
    await assert.rejects(createSmtpProvider(url, plaintext).send(sampleEmail(), {}), (err) => {
      assert.ok(err instanceof EmailTransientError);
      assert.equal(err.status, 535);
      return true;
    });
    assert.equal(smtp.delivered.length, 0);
  } finally {
    await smtp.close();
  }
});

Deno.test("smtp provider treats a server that is down as transient", async () => {
  const smtp = await startSmtp();
  await smtp.close(); // the port was just free: nothing listens there now
  await assert.rejects(
    createSmtpProvider(smtp.url, fast).send(sampleEmail(), {}),
    (err) => {
      assert.ok(err instanceof EmailTransientError);
      assert.equal(err.status, undefined);
      assert.match(err.message, /ECONNREFUSED/);
      return true;
    },
  );
});

Deno.test("smtp provider gives up on a server that never greets after greetingTimeoutMs", async () => {
  const silent = startSilent();
  try {
    const provider = createSmtpProvider(silent.url, { ...fast, greetingTimeoutMs: 150 });
    await assert.rejects(provider.send(sampleEmail(), {}), (err) => {
      assert.ok(err instanceof EmailTransientError);
      assert.match(err.message, /greeting/i);
      return true;
    });
  } finally {
    await silent.close();
  }
});

Deno.test("smtp provider closes its socket when the task's signal aborts", async () => {
  const silent = startSilent();
  try {
    const controller = new AbortController();
    const send = createSmtpProvider(silent.url, fast).send(sampleEmail(), {
      signal: controller.signal,
    });
    await silent.firstConnection;
    controller.abort(new Error("task timed out"));
    await assert.rejects(send, (err) => {
      assert.ok(err instanceof EmailTransientError);
      assert.match(err.message, /aborted/);
      return true;
    });
    // The server side reads end-of-file: no exchange is left running.
    const read = await silent.held[0]!.read(new Uint8Array(64)).catch(() => null);
    assert.equal(read, null);
  } finally {
    await silent.close();
  }
});

Deno.test("classifySmtpError() keeps bad credentials retryable and 5xx envelope errors permanent", () => {
  const auth = classifySmtpError({ code: "EAUTH", responseCode: 535, response: "535 Bad login" });
  assert.ok(auth instanceof EmailTransientError);
  const data = classifySmtpError({ code: "EMESSAGE", responseCode: 554, response: "554 Spam" });
  assert.ok(data instanceof EmailPermanentError);
  assert.equal(data.message, "554 Spam");
  const local = classifySmtpError({ code: "EENVELOPE", message: "No recipients defined" });
  assert.ok(local instanceof EmailPermanentError);
  const timeout = classifySmtpError({ code: "ETIMEDOUT", message: "Connection timeout" });
  assert.ok(timeout instanceof EmailTransientError);
});

Deno.test("createSmtpProvider() refuses a non-SMTP URL without echoing it", () => {
  assert.throws(() => createSmtpProvider("https://user:secret@mail.example"), (err) => {
    assert.ok(err instanceof EmailProviderConfigError);
    assert.ok(!err.message.includes("secret"));
    return true;
  });
  assert.throws(() => createSmtpProvider("not a url :secret"), EmailProviderConfigError);
});
