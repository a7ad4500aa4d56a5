/**
 * A local stand-in for AWS Secrets Manager that speaks its documented JSON
 * protocol (awsJson 1.1): `POST /` with `X-Amz-Target:
 * secretsmanager.GetSecretValue` and `Content-Type: application/x-amz-json-1.1`,
 * body `{"SecretId": …}`, answering `{ARN, Name, VersionId, SecretString,
 * VersionStages, CreatedDate}` or an error `{"__type", "message"}` with 400.
 * Signatures are not checked (the SDK signs; nothing here can verify SigV4).
 * For tests only.
 *
 * @module
 */

/** A running stand-in; `secrets` and `down` may be changed while it runs. */
export interface FakeSecretsManager {
  url: string;
  /** SecretId → SecretString. */
  secrets: Map<string, string>;
  /** While true every call fails with 503 (AWS unreachable). */
  down: boolean;
  /** Every SecretId asked for, in order. */
  calls: string[];
  /** Requests that did not follow the protocol. */
  malformed: string[];
  close(): Promise<void>;
}

/** Starts the stand-in on a free loopback port. */
export function startFakeSecretsManager(): FakeSecretsManager {
  const fake: Omit<FakeSecretsManager, "url" | "close"> = {
    secrets: new Map(),
    down: false,
    calls: [],
    malformed: [],
  };
  const versions = new Map<string, { text: string; id: number }>();
  const error = (type: string, message: string, status = 400) =>
    new Response(JSON.stringify({ __type: type, message }), {
      status,
      headers: { "Content-Type": "application/x-amz-json-1.1" },
    });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const body = await req.text();
    if (
      req.method !== "POST" || new URL(req.url).pathname !== "/" ||
      req.headers.get("x-amz-target") !== "secretsmanager.GetSecretValue" ||
      req.headers.get("content-type") !== "application/x-amz-json-1.1" ||
      !req.headers.get("authorization")?.startsWith("AWS4-HMAC-SHA256 ")
    ) {
      fake.malformed.push(`${req.method} ${req.headers.get("x-amz-target")}`);
      return error("InvalidRequestException", "not a GetSecretValue request");
    }
    const { SecretId } = JSON.parse(body) as { SecretId: string };
    fake.calls.push(SecretId);
    if (fake.down) return error("InternalServiceError", "unavailable", 503);
    const text = fake.secrets.get(SecretId);
    if (text === undefined) {
      return error("ResourceNotFoundException", "Secrets Manager can't find the specified secret.");
    }
    const previous = versions.get(SecretId);
    const version = previous?.text === text ? previous : { text, id: (previous?.id ?? 0) + 1 };
    versions.set(SecretId, version);
    return new Response(
      JSON.stringify({
        ARN: `arn:aws:secretsmanager:us-east-1:111122223333:secret:${SecretId}-AbCdEf`,
        Name: SecretId,
        VersionId: `00000000-0000-4000-8000-${String(version.id).padStart(12, "0")}`,
        SecretString: text,
        VersionStages: ["AWSCURRENT"],
        CreatedDate: 1_700_000_000,
      }),
      { headers: { "Content-Type": "application/x-amz-json-1.1" } },
    );
  });
  return Object.assign(fake, {
    url: `http://127.0.0.1:${server.addr.port}`,
    close: () => server.shutdown(),
  });
}
