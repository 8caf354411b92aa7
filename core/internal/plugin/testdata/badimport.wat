;; badimport.wat: imports env.sleep, which the host does not provide.
;; Build: wat2wasm badimport.wat -o badimport.wasm
(module
  (import "whisperer" "log" (func $log (param i32 i32 i32)))
  (import "env" "sleep" (func $sleep))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"countdowns\":[\"badimport\"],\"callbacks\":[]}")
  (func (export "whisperer_abi_v1"))
  (func (export "whisperer_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "whisperer_manifest") (result i64) (i64.const 43))
  (func (export "whisperer_countdown") (param i32 i32 i32 i32) (result i64) (call $sleep) (i64.const 1))
  (func (export "whisperer_validate") (param i32 i32 i32) (result i64) (i64.const 0)))
