;; grow.wat: a well-behaved but memory-hungry plugin. Its countdown grows
;; memory to 241 pages (~15 MiB), writes every new byte and returns 1, so
;; its instance stays healthy and is pooled holding that memory. Its
;; validator, given kwargs longer than "{}", recurses 30,000 deep (~4 MiB of
;; estimated stack, under the host's 8 MiB budget) and returns 0. Its
;; countdown key is "grow-" and 8 random letters, so that many copies load
;; side by side.
;; Build: wat2wasm grow.wat -o grow.wasm
(module
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"countdowns\":[\"grow-xxxxxxxx\"],\"callbacks\":[]}")
  (func (export "whisperer_abi_v1"))
  (func (export "whisperer_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "whisperer_manifest") (result i64)
    (local $i i32)
    (drop (call $random (i32.const 21) (i32.const 8)))
    (loop $next
      ;; a..p from the low 4 bits of each random byte
      (i32.store8 (i32.add (i32.const 21) (local.get $i))
        (i32.add (i32.const 97)
          (i32.and (i32.load8_u (i32.add (i32.const 21) (local.get $i))) (i32.const 15))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (i32.const 8))))
    (i64.const 47))
  (func (export "whisperer_countdown") (param i32 i32 i32 i32) (result i64)
    (if (i32.lt_u (memory.size) (i32.const 241))
      (then
        (drop (memory.grow (i32.sub (i32.const 241) (memory.size))))
        ;; Touch every new byte, so that it is resident.
        (memory.fill (i32.const 0x10000) (i32.const 0xff) (i32.const 0xf00000))))
    (i64.const 1))
  (func $rec (param $n i64) (result i64)
    (if (result i64) (i64.eqz (local.get $n))
      (then (i64.const 0))
      (else (call $rec (i64.sub (local.get $n) (i64.const 1))))))
  (func (export "whisperer_validate") (param i32) (param i32) (param $len i32) (result i64)
    (if (i32.le_u (local.get $len) (i32.const 2)) (then (return (i64.const 0))))
    (call $rec (i64.const 30000))))
