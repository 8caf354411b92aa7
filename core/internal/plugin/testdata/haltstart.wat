;; haltstart.wat: a start function that never returns. Loading it must end
;; in a timeout (the host runs start functions under its own watch), not
;; hang the loader.
;; Build: wat2wasm haltstart.wat -o haltstart.wasm
(module
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"countdowns\":[\"haltstart\"],\"callbacks\":[]}")
  (func $forever (loop $l (br $l)))
  (start $forever)
  (func (export "whisperer_abi_v1"))
  (func (export "whisperer_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "whisperer_manifest") (result i64) (i64.const 43))
  (func (export "whisperer_countdown") (param i32 i32 i32 i32) (result i64) (i64.const 1))
  (func (export "whisperer_validate") (param i32 i32 i32) (result i64) (i64.const 0)))
