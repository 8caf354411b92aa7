;; command.wat: a WASI command (exports _start), not a reactor.
;; Build: wat2wasm command.wat -o command.wasm
(module
  (import "whisperer" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"countdowns\":[\"command\"],\"callbacks\":[]}")
  (func (export "whisperer_abi_v1"))
  (func (export "whisperer_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "whisperer_manifest") (result i64) (i64.const 41))
  (func (export "_start"))
  (func (export "whisperer_countdown") (param i32 i32 i32 i32) (result i64) (i64.const 1))
  (func (export "whisperer_validate") (param i32 i32 i32) (result i64) (i64.const 0)))
