/**
 * The email provider the configuration selects (EMAIL_PROVIDER).
 *
 * @module
 */
import type { Breaker } from "../breakers/breaker.ts";
import type { Config } from "../config/mod.ts";
import type { EmailProvider } from "./provider.ts";
import { createFileProvider } from "./providers/file.ts";
import { createHttpApiProvider } from "./providers/http_api.ts";
import { createSmtpProvider } from "./providers/smtp.ts";

/** Builds the configured provider; the HTTP API's calls go through `breaker` when given. */
export function emailProviderFromConfig(config: Config["email"], breaker?: Breaker): EmailProvider {
  switch (config.provider) {
    case "file":
      return createFileProvider({ dir: config.dir });
    case "smtp":
      // parseConfig guarantees the URL for this provider.
      return createSmtpProvider(config.smtpUrl!);
    case "http_api":
      return createHttpApiProvider({
        url: config.apiUrl!,
        // Read per send: a rotated EMAIL_API_KEY (shared/secrets/) applies to the next one.
        apiKey: () => config.apiKey!,
        ...(breaker ? { fetch: (input, init) => breaker.fetch(input, init) } : {}),
      });
  }
}
