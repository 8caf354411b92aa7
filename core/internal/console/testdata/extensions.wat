;; extensions.wat: a plugin that registers the filter "all" (delivers
;; every event) and the transform "stamp" (adds the header X-Stamped: 1),
;; for the plugins page's test.
;; Build: wat2wasm extensions.wat -o extensions.wasm
(module
  (memory (export "memory") 1)
  ;; MANIFEST: 70 bytes at 0
  (data (i32.const 0) "{\"abi\":1,\"name\":\"extensions\",\"filters\":[\"all\"],\"transforms\":[\"stamp\"]}")
  ;; STAMP: 29 bytes at 256
  (data (i32.const 256) "{\"headers\":{\"X-Stamped\":\"1\"}}")
  (func (export "whisperer_abi_v1"))
  (func (export "whisperer_alloc") (param i32) (result i32) (i32.const 4096))
  (func $pack (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32)) (i64.extend_i32_u (local.get $len))))
  (func (export "whisperer_manifest") (result i64) (call $pack (i32.const 0) (i32.const 70)))
  (func (export "whisperer_filter") (param i32 i32 i32 i32 i32) (result i32) (i32.const 1))
  (func (export "whisperer_transform") (param i32 i32 i32 i32 i32 i32) (result i64)
    (call $pack (i32.const 256) (i32.const 29))))
