;; haltinit.wat: a WASI reactor whose _initialize never returns.
;; Build: wat2wasm haltinit.wat -o haltinit.wasm
(module
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"countdowns\":[\"haltinit\"],\"callbacks\":[]}")
  (func (export "_initialize") (loop $l (br $l)))
  (func (export "whisperer_abi_v1"))
  (func (export "whisperer_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "whisperer_manifest") (result i64) (i64.const 42))
  (func (export "whisperer_countdown") (param i32 i32 i32 i32) (result i64) (i64.const 1))
  (func (export "whisperer_validate") (param i32 i32 i32) (result i64) (i64.const 0)))
