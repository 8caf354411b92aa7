;; liar2.wat: the manifest declares a callback but the module does not export whisperer_callback.
;; Build: wat2wasm liar2.wat -o liar2.wasm
(module
  (import "whisperer" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"countdowns\":[],\"callbacks\":[\"c\"]}")
  (func (export "whisperer_abi_v1"))
  (func (export "whisperer_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "whisperer_manifest") (result i64) (i64.const 35))
)
