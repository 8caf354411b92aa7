;; hugemax.wat: declares a 4 GiB (65,536-page) maximum memory. It loads with
;; the maximum lowered to plugins.memory_limit_mb: countdown grows memory by
;; 64 MiB past its one page and returns memory.grow's result (-1 when refused).
;; Build: wat2wasm hugemax.wat -o hugemax.wasm
(module
  (import "whisperer" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1 65536)
  (data (i32.const 0) "{\"countdowns\":[\"hugemax\"],\"callbacks\":[]}")
  (func (export "whisperer_abi_v1"))
  (func (export "whisperer_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "whisperer_manifest") (result i64) (i64.const 41))
  (func (export "whisperer_countdown") (param i32 i32 i32 i32) (result i64)
    (i64.extend_i32_s (memory.grow (i32.const 1024))))
  (func (export "whisperer_validate") (param i32 i32 i32) (result i64) (i64.const 0)))
