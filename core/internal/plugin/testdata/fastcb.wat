;; fastcb.wat: callback "fast" returns 0 at once; for callback fairness tests
;; (beside loop.wasm, whose callback never returns).
;; Build: wat2wasm fastcb.wat -o fastcb.wasm
(module
  (import "whisperer" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"countdowns\":[],\"callbacks\":[\"fast\"]}")
  (func (export "whisperer_abi_v1"))
  (func (export "whisperer_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "whisperer_manifest") (result i64) (i64.const 38))
  (func (export "whisperer_callback") (param i32 i32 i32) (result i32) (i32.const 0)))
