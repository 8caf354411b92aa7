;; badlogenabled.wat: imports whisperer.log_enabled with the wrong signature.
;; Build: wat2wasm badlogenabled.wat -o badlogenabled.wasm
(module
  (import "whisperer" "log_enabled" (func $enabled (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"countdowns\":[\"badlvl\"],\"callbacks\":[]}")  ;; 40 bytes
  (func (export "whisperer_abi_v1"))
  (func (export "whisperer_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "whisperer_manifest") (result i64) (i64.const 40))
  (func (export "whisperer_countdown") (param i32 i32 i32 i32) (result i64) (i64.const 1))
  (func (export "whisperer_validate") (param i32 i32 i32) (result i64) (i64.const 0)))
