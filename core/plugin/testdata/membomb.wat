;; membomb.wat: countdown grows memory until refused, then traps; validate is fine.
;; Build: wat2wasm membomb.wat -o membomb.wasm
(module
  (import "whisperer" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"countdowns\":[\"membomb\"],\"callbacks\":[]}")
  (func (export "whisperer_abi_v1"))
  (func (export "whisperer_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "whisperer_manifest") (result i64) (i64.const 41))
  (func (export "whisperer_countdown") (param i32 i32 i32 i32) (result i64)
    (loop $more
      (br_if $more (i32.ne (memory.grow (i32.const 256)) (i32.const -1))))
    (unreachable))
  (func (export "whisperer_validate") (param i32 i32 i32) (result i64) (i64.const 0)))
