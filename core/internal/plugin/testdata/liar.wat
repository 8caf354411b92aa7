;; liar.wat: the manifest declares countdowns a and b and callback c, but index 1 traps in its validator.
;; Build: wat2wasm liar.wat -o liar.wasm
(module
  (import "whisperer" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"countdowns\":[\"a\",\"b\"],\"callbacks\":[]}")
  (func (export "whisperer_abi_v1"))
  (func (export "whisperer_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "whisperer_manifest") (result i64) (i64.const 39))
  (func (export "whisperer_countdown") (param i32 i32 i32 i32) (result i64) (i64.const 1))
  (func (export "whisperer_validate") (param $idx i32) (param i32 i32) (result i64)
    (if (local.get $idx) (then (unreachable)))
    (i64.const 0)))
