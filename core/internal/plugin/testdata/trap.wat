;; trap.wat: countdown hits unreachable; callback reads out of bounds.
;; Build: wat2wasm trap.wat -o trap.wasm
(module
  (import "whisperer" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"countdowns\":[\"trap\"],\"callbacks\":[\"trap\"]}")
  (func (export "whisperer_abi_v1"))
  (func (export "whisperer_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "whisperer_manifest") (result i64) (i64.const 44))
  (func (export "whisperer_countdown") (param i32 i32 i32 i32) (result i64) (unreachable))
  (func (export "whisperer_callback") (param i32 i32 i32) (result i32)
    (i32.load (i32.const 0x7ffffff0)))
  (func (export "whisperer_validate") (param i32 i32 i32) (result i64) (i64.const 0)))
