# A receiver that verifies Whisperer's signatures: a Rack application.
#
# Run: WHISPERER_SECRET=... rackup --host 127.0.0.1 --port 8080 verify.rb
require "base64"
require "openssl"
require "rack"

TOLERANCE = 5 * 60 # seconds webhook-timestamp may be from now

# X-Whisperer-Signature (dj-whisperer's): "sha256=" + hex HMAC-SHA256(secret, body).
def verify_whisperer(secrets, body, got)
  secrets.any? do |secret|
    want = "sha256=" + OpenSSL::HMAC.hexdigest("SHA256", secret, body)
    Rack::Utils.secure_compare(want, got.to_s)
  end
end

# webhook-signature (Standard Webhooks): space-separated "v1,<base64 HMAC-SHA256(
# secret, webhook-id + "." + webhook-timestamp + "." + body)>" values; one must match.
def verify_standard(secrets, body, id, ts, signatures, now = Time.now.to_i)
  return false unless ts.to_s.match?(/\A[0-9]{1,15}\z/)
  return false if (now - ts.to_i).abs > TOLERANCE # stale or from the future: a replay
  sigs = signatures.to_s.split(" ").filter_map { |s| s.delete_prefix("v1,") if s.start_with?("v1,") }
  secrets.any? do |secret|
    want = Base64.strict_encode64(OpenSSL::HMAC.digest("SHA256", secret, "#{id}.#{ts}.#{body}"))
    sigs.any? { |sig| Rack::Utils.secure_compare(want, sig) }
  end
end

class Verify
  # The hook's secret_key, and during a rotation the previous one.
  SECRETS = [ENV["WHISPERER_SECRET"], ENV["WHISPERER_PREVIOUS_SECRET"]].compact.reject(&:empty?)
  raise "set WHISPERER_SECRET to the hook's secret_key" if SECRETS.empty?

  def self.call(env)
    body = env["rack.input"].read(1 << 20).to_s.b # the raw bytes: verify them before parsing
    ok = if env["PATH_INFO"] == "/dj-whisperer" # a receiver written for dj-whisperer
      verify_whisperer(SECRETS, body, env["HTTP_X_WHISPERER_SIGNATURE"])
    else
      verify_standard(SECRETS, body, env["HTTP_WEBHOOK_ID"], env["HTTP_WEBHOOK_TIMESTAMP"],
                      env["HTTP_WEBHOOK_SIGNATURE"])
    end
    # Verified: JSON.parse(body), and drop a webhook-id already handled (retries repeat it).
    [ok ? 204 : 401, {}, []]
  end
end
