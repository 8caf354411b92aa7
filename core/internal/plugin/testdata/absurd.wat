;; absurd.wat: countdown 0 returns -5, countdown 1 returns 2^62.
;; Build: wat2wasm absurd.wat -o absurd.wasm
(module
  (import "whisperer" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"countdowns\":[\"negative\",\"huge\"],\"callbacks\":[]}")
  (func (export "whisperer_abi_v1"))
  (func (export "whisperer_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "whisperer_manifest") (result i64) (i64.const 49))
  (func (export "whisperer_countdown") (param $idx i32) (param i32 i32 i32) (result i64)
    (if (result i64) (local.get $idx) (then (i64.const 0x4000000000000000)) (else (i64.const -5))))
  (func (export "whisperer_validate") (param i32 i32 i32) (result i64) (i64.const 0)))
