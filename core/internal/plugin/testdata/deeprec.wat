;; deeprec.wat: countdown and validator recurse without end (each frame
;; keeps a few live values), so the call ends in a stack overflow.
;; Build: wat2wasm deeprec.wat -o deeprec.wasm
(module
  (import "whisperer" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"countdowns\":[\"deeprec\"],\"callbacks\":[]}")
  (func (export "whisperer_abi_v1"))
  (func (export "whisperer_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "whisperer_manifest") (result i64) (i64.const 41))
  (func $rec (param $n i64) (result i64)
    (i64.add (local.get $n)
      (i64.mul (local.get $n) (call $rec (i64.add (local.get $n) (i64.const 1))))))
  (func (export "whisperer_countdown") (param i32 i32 i32 i32) (result i64)
    (call $rec (i64.const 0)))
  ;; The load probe's "{}" passes; longer kwargs recurse.
  (func (export "whisperer_validate") (param i32) (param i32) (param $len i32) (result i64)
    (if (i32.le_u (local.get $len) (i32.const 2)) (then (return (i64.const 0))))
    (call $rec (i64.const 0))))
