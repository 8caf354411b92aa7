;; slow2.wat: countdown "slow" logs "started", spins on the WASI clock for
;; 200ms, then returns 2; for reload tests (slow1 and slow2 differ only there).
;; Build: wat2wasm slow2.wat -o slow2.wasm
(module
  (import "whisperer" "log" (func $log (param i32 i32 i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $now (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"countdowns\":[\"slow\"],\"callbacks\":[]}")
  (data (i32.const 64) "started")
  (func (export "whisperer_abi_v1"))
  (func (export "whisperer_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "whisperer_manifest") (result i64) (i64.const 38))
  (func $monotonic (result i64)
    (drop (call $now (i32.const 1) (i64.const 1) (i32.const 128)))
    (i64.load (i32.const 128)))
  (func (export "whisperer_countdown") (param i32 i32 i32 i32) (result i64)
    (local $start i64)
    (call $log (i32.const 1) (i32.const 64) (i32.const 7))
    (local.set $start (call $monotonic))
    (loop $spin
      (br_if $spin (i64.lt_u (i64.sub (call $monotonic) (local.get $start)) (i64.const 200000000))))
    (i64.const 2))
  (func (export "whisperer_validate") (param i32 i32 i32) (result i64) (i64.const 0)))
