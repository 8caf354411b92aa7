;; logenabled.wat: countdown "lvl" returns whisperer.log_enabled(retry_count),
;; so a test can read what the host answers for each level.
;; Build: wat2wasm logenabled.wat -o logenabled.wasm
(module
  (import "whisperer" "log_enabled" (func $enabled (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"countdowns\":[\"lvl\"],\"callbacks\":[]}")  ;; 37 bytes
  (func (export "whisperer_abi_v1"))
  (func (export "whisperer_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "whisperer_manifest") (result i64) (i64.const 37))
  (func (export "whisperer_countdown") (param i32 i32 i32 i32) (result i64)
    (i64.extend_i32_u (call $enabled (local.get 1))))
  (func (export "whisperer_validate") (param i32 i32 i32) (result i64) (i64.const 0)))
