;; noisy.wat: callback logs 10000 messages of 60000 bytes, then succeeds.
;; Build: wat2wasm noisy.wat -o noisy.wasm
(module
  (import "whisperer" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"countdowns\":[],\"callbacks\":[\"noisy\"]}")
  (func (export "whisperer_abi_v1"))
  (func (export "whisperer_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "whisperer_manifest") (result i64) (i64.const 39))
  (func (export "whisperer_callback") (param i32 i32 i32) (result i32)
    (local $i i32)
    (loop $more
      (call $log (i32.const 1) (i32.const 0) (i32.const 60000))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (i32.const 10000))))
    (i32.const 0)))
