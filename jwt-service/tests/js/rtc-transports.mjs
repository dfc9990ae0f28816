// What Element Call does to find the JWT service, with the real matrix-js-sdk:
// `_unstable_getRTCTransports()`, then the first entry with type "livekit" and a
// livekit_service_url. Prints one JSON line: {"ok":true,"livekit_service_url":...} or
// {"ok":false,"error":...,"httpStatus":...,"errcode":...}; exit code 0 or 1.
//
// Usage: node rtc-transports.mjs <homeserver base URL> <access token>
import { createClient } from "matrix-js-sdk";
import { logger } from "matrix-js-sdk/lib/logger.js";

logger.disableAll();
const [baseUrl, accessToken] = process.argv.slice(2);
if (!baseUrl || !accessToken) {
  console.error("usage: node rtc-transports.mjs <homeserver base URL> <access token>");
  process.exit(2);
}
const client = createClient({ baseUrl, accessToken, localTimeoutMs: 10000 });
try {
  const transports = await client._unstable_getRTCTransports();
  const livekit = (transports ?? []).find(
    (t) => t?.type === "livekit" && typeof t.livekit_service_url === "string",
  );
  if (livekit) {
    console.log(JSON.stringify({ ok: true, livekit_service_url: livekit.livekit_service_url, transports }));
    process.exit(0);
  }
  console.log(JSON.stringify({ ok: false, error: "no livekit transport", transports: transports ?? null }));
  process.exit(1);
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e?.message ?? e), httpStatus: e?.httpStatus ?? null, errcode: e?.errcode ?? null }));
  process.exit(1);
}
