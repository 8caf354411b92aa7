;; eviltransform.wat: hostile transforms. tloop never returns; ttrap hits
;; unreachable; thuge claims a 2 MiB result (over the 1 MiB bound);
;; tinvalid returns invalid JSON; tprotected sets protected headers (the
;; host passes them on; the server refuses them); toutside points its result
;; outside memory; tbadheader sets a header value with CR LF; tnegative logs
;; a reason and returns -3; tjsonbody is healthy (a JSON body, a header,
;; cancel).
;; Build: wat2wasm eviltransform.wat -o eviltransform.wasm
(module
  (import "whisperer" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  ;; MANIFEST: 112 bytes at 0
  (data (i32.const 0) "{\"transforms\":[\"tloop\",\"ttrap\",\"thuge\",\"tinvalid\",\"tprotected\",\"toutside\",\"tbadheader\",\"tnegative\",\"tjsonbody\"]}")
  ;; INVALID: 22 bytes at 256
  (data (i32.const 256) "{\"body\": \"unterminated")
  ;; PROTECTED: 110 bytes at 512
  (data (i32.const 512) "{\"body\":\"x\",\"headers\":{\"Webhook-Signature\":\"v1,forged\",\"Content-Length\":\"1\",\"Host\":\"evil.example\",\"X-Ok\":\"1\"}}")
  ;; BADHEADER: 40 bytes at 768
  (data (i32.const 768) "{\"headers\":{\"X-Bad\":\"a\\r\\nInjected: 1\"}}")
  ;; JSONBODY: 64 bytes at 1024
  (data (i32.const 1024) "{\"body\":{\"text\":\"hi\"},\"cancel\":true,\"headers\":{\"X-Kind\":\"chat\"}}")
  ;; REASON: 27 bytes at 1536
  (data (i32.const 1536) "tnegative: template refused")
  (func (export "whisperer_abi_v1"))
  (func (export "whisperer_alloc") (param i32) (result i32) (i32.const 4096))
  (func (export "whisperer_manifest") (result i64) (i64.const 112))
  (func $pack (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32)) (i64.extend_i32_u (local.get $len))))
  (func (export "whisperer_transform") (param $idx i32) (param i32 i32 i32 i32 i32) (result i64)
    (if (i32.eqz (local.get $idx)) (then (loop $forever (br $forever))))
    (if (i32.eq (local.get $idx) (i32.const 1)) (then (unreachable)))
    (if (i32.eq (local.get $idx) (i32.const 2)) (then (return (call $pack (i32.const 0) (i32.const 0x200000)))))
    (if (i32.eq (local.get $idx) (i32.const 3)) (then (return (call $pack (i32.const 256) (i32.const 22)))))
    (if (i32.eq (local.get $idx) (i32.const 4)) (then (return (call $pack (i32.const 512) (i32.const 110)))))
    (if (i32.eq (local.get $idx) (i32.const 5)) (then (return (call $pack (i32.const 0xfff00) (i32.const 1000)))))
    (if (i32.eq (local.get $idx) (i32.const 6)) (then (return (call $pack (i32.const 768) (i32.const 40)))))
    (if (i32.eq (local.get $idx) (i32.const 7))
      (then
        (call $log (i32.const 3) (i32.const 1536) (i32.const 27))
        (return (i64.const -3))))
    (call $pack (i32.const 1024) (i32.const 64))))
