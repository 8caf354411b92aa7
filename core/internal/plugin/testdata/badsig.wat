;; badsig.wat: whisperer_countdown, whisperer_alloc and the optional
;; whisperer_callback_record have the wrong signatures.
;; Build: wat2wasm badsig.wat -o badsig.wasm
(module
  (import "whisperer" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"countdowns\":[\"badsig\"],\"callbacks\":[]}")
  (func (export "whisperer_abi_v1"))
  (func (export "whisperer_manifest") (result i64) (i64.const 40))
  (func (export "whisperer_alloc") (param i64) (result i32) (i32.const 1024))
  (func (export "whisperer_countdown") (param i32 i32) (result i64) (i64.const 1))
  (func (export "whisperer_validate") (param i32 i32 i32) (result i64) (i64.const 0))
  (func (export "whisperer_callback_record") (param i32 i32 i32) (result i32) (i32.const 0)))
