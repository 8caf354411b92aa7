;; fork.wat: countdown "fork" recurses twice per frame to depth 60 without
;; a single loop (2^60 calls, never deep): only the check on entry to each
;; function can stop it. Countdown "ok" returns 7; both run a start
;; function first, which sets the value "ok" returns.
;; Build: wat2wasm fork.wat -o fork.wasm
(module
  (memory (export "memory") 1)
  (global $ok (mut i64) (i64.const 0))
  (data (i32.const 0) "{\"countdowns\":[\"fork\",\"ok\"],\"callbacks\":[]}")
  (func $init (global.set $ok (i64.const 7)))
  (start $init)
  (func $fork (param $n i64) (result i64)
    (if (result i64) (i64.eqz (local.get $n))
      (then (i64.const 1))
      (else (i64.add (call $fork (i64.sub (local.get $n) (i64.const 1)))
                     (call $fork (i64.sub (local.get $n) (i64.const 1)))))))
  (func (export "whisperer_abi_v1"))
  (func (export "whisperer_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "whisperer_manifest") (result i64) (i64.const 43))
  (func (export "whisperer_countdown") (param $idx i32) (param i32 i32 i32) (result i64)
    (if (result i64) (i32.eqz (local.get $idx))
      (then (call $fork (i64.const 60)))
      (else (global.get $ok))))
  (func (export "whisperer_validate") (param i32 i32 i32) (result i64) (i64.const 0)))
