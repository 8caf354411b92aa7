;; membomb.wat: countdown grows memory (writing every new byte) until refused,
;; then traps; validate is fine.
;; Build: wat2wasm membomb.wat -o membomb.wasm
(module
  (import "whisperer" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"countdowns\":[\"membomb\"],\"callbacks\":[]}")
  (func (export "whisperer_abi_v1"))
  (func (export "whisperer_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "whisperer_manifest") (result i64) (i64.const 41))
  (func (export "whisperer_countdown") (param i32 i32 i32 i32) (result i64)
    (local $old i32)
    (loop $more
      (local.set $old (memory.grow (i32.const 256)))
      (if (i32.ne (local.get $old) (i32.const -1))
        (then
          ;; Touch every new byte, so that it is resident.
          (memory.fill (i32.shl (local.get $old) (i32.const 16)) (i32.const 0xff) (i32.const 0x1000000))
          (br $more))))
    (unreachable))
  (func (export "whisperer_validate") (param i32 i32 i32) (result i64) (i64.const 0)))
