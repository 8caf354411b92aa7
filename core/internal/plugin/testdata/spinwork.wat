;; spinwork.wat: countdown "spin" spins on the WASI clock for
;; retry_count × 20µs and returns 1; callback "spin" spins 200µs; transform
;; "echo" returns its kwargs (in its input buffer, which the next call
;; overwrites) as its result document.
;; Build: wat2wasm spinwork.wat -o spinwork.wasm
(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $now (param i32 i64 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) "{\"countdowns\":[\"spin\"],\"callbacks\":[\"spin\"],\"transforms\":[\"echo\"]}")
  (func (export "whisperer_abi_v1"))
  (func (export "whisperer_alloc") (param i32) (result i32) (i32.const 4096))
  (func (export "whisperer_manifest") (result i64) (i64.const 66))
  (func $monotonic (result i64)
    (drop (call $now (i32.const 1) (i64.const 1) (i32.const 128)))
    (i64.load (i32.const 128)))
  (func $spin (param $ns i64)
    (local $start i64)
    (local.set $start (call $monotonic))
    (loop $l
      (br_if $l (i64.lt_u (i64.sub (call $monotonic) (local.get $start)) (local.get $ns)))))
  (func (export "whisperer_countdown") (param i32 i32 i32 i32) (result i64)
    (call $spin (i64.mul (i64.extend_i32_u (local.get 1)) (i64.const 20000)))
    (i64.const 1))
  (func (export "whisperer_callback") (param i32 i32 i32) (result i32)
    (call $spin (i64.const 200000))
    (i32.const 0))
  (func (export "whisperer_transform") (param i32 i32 i32 i32 i32 i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get 1)) (i64.const 32)) (i64.extend_i32_u (local.get 2))))
  (func (export "whisperer_validate") (param i32 i32 i32) (result i64) (i64.const 0)))
