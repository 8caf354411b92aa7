// A receiver that verifies Whisperer's signatures. Node 16+, no dependencies.
//
// Run: WHISPERER_SECRET=... PORT=8080 node verify.js
const crypto = require("crypto");
const http = require("http");

const TOLERANCE = 5 * 60; // seconds webhook-timestamp may be from now

function equal(a, b) {
  const x = Buffer.from(a), y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

// X-Whisperer-Signature (dj-whisperer's): "sha256=" + hex HMAC-SHA256(secret, body).
function verifyWhisperer(secrets, body, headers) {
  const got = headers["x-whisperer-signature"] || "";
  return secrets.some((secret) =>
    equal(got, "sha256=" + crypto.createHmac("sha256", secret).update(body).digest("hex")));
}

// webhook-signature (Standard Webhooks): space-separated "v1,<base64 HMAC-SHA256(
// secret, webhook-id + "." + webhook-timestamp + "." + body)>" values; one must match.
function verifyStandard(secrets, body, headers, now = Date.now() / 1000) {
  const id = headers["webhook-id"] || "";
  const ts = headers["webhook-timestamp"] || "";
  if (!/^[0-9]{1,15}$/.test(ts)) return false;
  if (Math.abs(now - Number(ts)) > TOLERANCE) return false; // stale or from the future: a replay
  const sigs = (headers["webhook-signature"] || "").split(" ")
    .filter((s) => s.startsWith("v1,")).map((s) => s.slice(3));
  return secrets.some((secret) => {
    const want = crypto.createHmac("sha256", secret).update(`${id}.${ts}.`).update(body).digest("base64");
    return sigs.some((sig) => equal(sig, want));
  });
}

// The hook's secret_key, and during a rotation the previous one.
const SECRETS = [process.env.WHISPERER_SECRET, process.env.WHISPERER_PREVIOUS_SECRET].filter(Boolean);

function receive(req, res) {
  const chunks = [];
  let size = 0;
  req.on("data", (chunk) => {
    size += chunk.length;
    if (size > 1 << 20) req.destroy();
    else chunks.push(chunk);
  });
  req.on("end", () => {
    const body = Buffer.concat(chunks); // the raw bytes: verify them before parsing
    const ok = req.url.split("?")[0] === "/dj-whisperer" // a receiver written for dj-whisperer
      ? verifyWhisperer(SECRETS, body, req.headers)
      : verifyStandard(SECRETS, body, req.headers);
    // Verified: JSON.parse(body), and drop a webhook-id already handled (retries repeat it).
    res.writeHead(ok ? 204 : 401).end();
  });
}

module.exports = { verifyWhisperer, verifyStandard };

if (require.main === module) {
  if (SECRETS.length === 0) throw new Error("set WHISPERER_SECRET to the hook's secret_key");
  http.createServer(receive).listen(Number(process.env.PORT || 8080), "127.0.0.1");
}
