;; loop.wat: countdown 0 never returns; countdown 1 returns 1; callback 0 never returns.
;; Build: wat2wasm loop.wat -o loop.wasm
(module
  (import "whisperer" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"countdowns\":[\"loop\",\"ok\"],\"callbacks\":[\"loop\"]}")
  (func (export "whisperer_abi_v1"))
  (func (export "whisperer_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "whisperer_manifest") (result i64) (i64.const 49))
  (func (export "whisperer_countdown") (param $idx i32) (param i32 i32 i32) (result i64)
    (if (i32.eqz (local.get $idx)) (then (loop $forever (br $forever))))
    (i64.const 1))
  (func (export "whisperer_callback") (param i32 i32 i32) (result i32)
    (loop $forever (br $forever))
    (i32.const 0))
  (func (export "whisperer_validate") (param i32 i32 i32) (result i64) (i64.const 0)))
