;; bigmemory.wat: declares a 128 MiB minimum memory, over the default 64 MiB limit.
;; Build: wat2wasm bigmemory.wat -o bigmemory.wasm
(module
  (import "whisperer" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 2048)
  (data (i32.const 0) "{\"countdowns\":[\"bigmemory\"],\"callbacks\":[]}")
  (func (export "whisperer_abi_v1"))
  (func (export "whisperer_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "whisperer_manifest") (result i64) (i64.const 43))
  (func (export "whisperer_countdown") (param i32 i32 i32 i32) (result i64) (i64.const 1))
  (func (export "whisperer_validate") (param i32 i32 i32) (result i64) (i64.const 0)))
