<?php
// A receiver that verifies Whisperer's signatures. PHP 7.3+, no extensions
// beyond the default hash.
//
// Run: WHISPERER_SECRET=... php -S 127.0.0.1:8080 verify.php

const TOLERANCE = 5 * 60; // seconds webhook-timestamp may be from now

// X-Whisperer-Signature (dj-whisperer's): "sha256=" + hex HMAC-SHA256(secret, body).
function verify_whisperer(array $secrets, string $body, string $got): bool
{
    foreach ($secrets as $secret) {
        if (hash_equals('sha256=' . hash_hmac('sha256', $body, $secret), $got)) {
            return true;
        }
    }
    return false;
}

// webhook-signature (Standard Webhooks): space-separated "v1,<base64 HMAC-SHA256(
// secret, webhook-id + "." + webhook-timestamp + "." + body)>" values; one must match.
function verify_standard(array $secrets, string $body, string $id, string $ts, string $signatures, ?int $now = null): bool
{
    if (!preg_match('/\A[0-9]{1,15}\z/', $ts)) {
        return false;
    }
    if (abs(($now ?? time()) - (int) $ts) > TOLERANCE) {
        return false; // stale or from the future: a replay
    }
    foreach ($secrets as $secret) {
        $want = base64_encode(hash_hmac('sha256', "$id.$ts.$body", $secret, true));
        foreach (explode(' ', $signatures) as $sig) {
            if (strncmp($sig, 'v1,', 3) === 0 && hash_equals($want, substr($sig, 3))) {
                return true;
            }
        }
    }
    return false;
}

// The hook's secret_key, and during a rotation the previous one.
$secrets = array_values(array_filter([getenv('WHISPERER_SECRET'), getenv('WHISPERER_PREVIOUS_SECRET')]));
if (!$secrets) {
    http_response_code(500);
    exit("set WHISPERER_SECRET to the hook's secret_key\n");
}
$body = file_get_contents('php://input', false, null, 0, 1 << 20); // the raw bytes: verify them before parsing
if (parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH) === '/dj-whisperer') { // a receiver written for dj-whisperer
    $ok = verify_whisperer($secrets, $body, $_SERVER['HTTP_X_WHISPERER_SIGNATURE'] ?? '');
} else {
    $ok = verify_standard($secrets, $body, $_SERVER['HTTP_WEBHOOK_ID'] ?? '',
        $_SERVER['HTTP_WEBHOOK_TIMESTAMP'] ?? '', $_SERVER['HTTP_WEBHOOK_SIGNATURE'] ?? '');
}
// Verified: json_decode($body, true), and drop a webhook-id already handled (retries repeat it).
http_response_code($ok ? 204 : 401);
